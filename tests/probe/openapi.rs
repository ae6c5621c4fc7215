//! What the probe reads of an OpenAPI 3.1 document: operations, their
//! parameters and a JSON body that fits each request schema, with a way to
//! reach every string in it.

use serde_json::{Map, Value, json};

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `GET`, `POST`…
    pub method: reqwest::Method,
    /// The path template, `/events/{id}`.
    pub template: String,
    /// Whether it declares bearer security.
    pub secured: bool,
    /// Names of its query parameters.
    pub query: Vec<String>,
    /// A JSON body that fits its request schema, if it takes JSON.
    pub body: Option<Value>,
}

/// Every operation of `doc`, in document order.
pub fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<reqwest::Method>() else { continue };
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let query = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "query")
                        .filter_map(|p| p["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let body = op["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|schema| example(doc, &Value::Object(schema.clone()), 0));
            out.push(Operation { method, template: template.clone(), secured, query, body });
        }
    }
    out
}

/// A value that fits `schema`: each string "probe", each number 1, the first
/// of each enum and of each choice.
pub fn example(doc: &Value, schema: &Value, depth: usize) -> Value {
    if depth > 12 {
        return Value::Null;
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or_default();
        return example(doc, &doc["components"]["schemas"][name], depth + 1);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    for choice in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema[choice].as_array().and_then(|c| c.iter().find(|s| s["type"] != "null")) {
            return example(doc, first, depth + 1);
        }
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    match kind.as_str() {
        Some("object") => {
            let mut object = Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    object.insert(name.clone(), example(doc, property, depth + 1));
                }
            }
            Value::Object(object)
        }
        Some("array") => json!([example(doc, &schema["items"], depth + 1)]),
        Some("string") => json!("probe"),
        Some("integer") => json!(1),
        Some("number") => json!(1.0),
        Some("boolean") => json!(false),
        _ if schema["properties"].is_object() => {
            example(doc, &json!({"type": "object", "properties": schema["properties"]}), depth + 1)
        }
        _ => Value::Null,
    }
}

/// JSON pointers of every string in `value`.
pub fn string_pointers(value: &Value) -> Vec<String> {
    fn walk(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::String(_) => out.push(at),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{at}/{i}"), out);
                }
            }
            Value::Object(fields) => {
                for (name, item) in fields {
                    walk(item, format!("{at}/{}", name.replace('~', "~0").replace('/', "~1")), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

/// `value` with the string at `pointer` replaced by `text`.
pub fn with_string(value: &Value, pointer: &str, text: &str) -> Value {
    let mut changed = value.clone();
    if let Some(slot) = changed.pointer_mut(pointer) {
        *slot = Value::String(text.to_owned());
    }
    changed
}
