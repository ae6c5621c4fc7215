//! The ops round trip: keys → mint → QR image → decode → verify, and every way a
//! code can be wrong at the command line.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;
use tixgate_tests::{Run, run};

struct Issuer {
    dir: TempDir,
    kid: String,
}

impl Issuer {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = run(
            "cloud-api",
            &["keys", "generate", "--dir", "keys", "--valid-from", "2026-01-01T00:00:00Z"],
            dir.path(),
        );
        assert_eq!(out.code, 0, "{out:?}");
        let kid = out.stdout.trim().to_owned();
        assert!(kid.len() == 8 && kid.bytes().all(|b| b.is_ascii_hexdigit()), "kid {kid:?}");
        Self { dir, kid }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn mint(&self, extra: &[&str]) -> String {
        let mut args = vec![
            "tickets",
            "mint",
            "--key",
            "keys/signing-key.pem",
            "--event",
            "42",
            "--ticket",
            "1001",
            "--type",
            "3",
        ];
        args.extend_from_slice(extra);
        let out = run("cloud-api", &args, self.path());
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.ends_with('\n') && out.stdout.lines().count() == 1, "mint prints the code only: {out:?}");
        out.stdout.trim_end().to_owned()
    }

    fn verify(&self, args: &[&str]) -> (Run, Option<Value>) {
        let mut all = vec!["verify", "--keyring", "keys/keyring.json", "--at", "2026-12-01T20:00:00Z"];
        all.extend_from_slice(args);
        let out = run("gate-agent", &all, self.path());
        let json = (out.stdout.lines().count() == 1).then(|| serde_json::from_str(out.stdout.trim()).unwrap());
        (out, json)
    }

    fn expect_reject(&self, args: &[&str], reason: &str) -> Value {
        let (out, json) = self.verify(args);
        let json = json.unwrap_or_else(|| panic!("one JSON line expected: {out:?}"));
        assert_eq!(
            (out.code, json["decision"].as_str(), json["reason"].as_str()),
            (1, Some("reject"), Some(reason)),
            "{out:?}"
        );
        json
    }
}

#[test]
fn a_minted_ticket_is_accepted_with_its_details() {
    let issuer = Issuer::new();
    let key = issuer.path().join("keys/signing-key.pem");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let code = issuer.mint(&["--seat", "A-12", "--valid-until", "2026-12-31T23:00:00Z"]);
    assert!(code.starts_with("TX1:"), "{code}");
    let (out, json) = issuer.verify(&["--event", "42", &code]);
    assert_eq!(out.code, 0, "{out:?}");
    let json = json.unwrap();
    assert_eq!(json["decision"], "accept");
    assert_eq!(json["reason"], Value::Null);
    let t = &json["ticket"];
    assert_eq!(
        (t["event_id"].as_u64(), t["ticket_id"].as_u64(), t["ticket_type_id"].as_u64()),
        (Some(42), Some(1001), Some(3))
    );
    assert_eq!(t["seat"], "A-12");
    assert_eq!(t["key_id"].as_str(), Some(issuer.kid.as_str()));
    assert_eq!(t["valid_until"], "2026-12-31T23:00:00Z");
}

#[test]
fn qr_png_round_trips_through_decode_and_verify_image() {
    let issuer = Issuer::new();
    let code = issuer.mint(&[]);
    for file in ["ticket.png", "ticket.svg"] {
        let out = run("cloud-api", &["tickets", "qr", "--out", file, &code], issuer.path());
        assert_eq!(out.code, 0, "{out:?}");
        assert!(issuer.path().join(file).metadata().unwrap().len() > 100);
    }
    let decoded = run("gate-agent", &["decode", "ticket.png"], issuer.path());
    assert_eq!((decoded.code, decoded.stdout.as_str()), (0, code.as_str()), "{decoded:?}");
    let (out, json) = issuer.verify(&["--image", "ticket.png"]);
    assert_eq!((out.code, json.unwrap()["decision"].as_str()), (0, Some("accept")), "{out:?}");
}

#[test]
fn decode_reads_a_real_photo_and_explains_failures_in_one_line() {
    let photo = tixgate_tests::qr_sets::photo_dir().join("qrcode-1/1.png");
    let expected = std::fs::read_to_string(photo.with_extension("txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run("gate-agent", &["decode", photo.to_str().unwrap()], dir.path());
    assert_eq!((out.code, out.stdout.as_str()), (0, expected.as_str()));

    std::fs::write(dir.path().join("not-an-image.png"), b"hello").unwrap();
    std::fs::write(dir.path().join("blank.png"), blank_png()).unwrap();
    for file in ["not-an-image.png", "missing.png", "blank.png"] {
        let out = run("gate-agent", &["decode", file], dir.path());
        assert_eq!(out.code, 1, "{file}: {out:?}");
        assert!(out.stdout.is_empty() && out.stderr.lines().count() == 1, "{file}: {out:?}");
    }
}

/// A valid white PNG with no code in it.
fn blank_png() -> Vec<u8> {
    let white = image::GrayImage::from_pixel(200, 150, image::Luma([255]));
    let mut out = std::io::Cursor::new(Vec::new());
    white.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn wrong_codes_are_rejected_with_the_right_reason() {
    let issuer = Issuer::new();
    let code = issuer.mint(&["--valid-from", "2026-11-01T00:00:00Z", "--valid-until", "2026-12-31T00:00:00Z"]);

    // One character changed inside the signature.
    let mut tampered: Vec<char> = code.chars().collect();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let json = issuer.expect_reject(&[&tampered], "bad_signature");
    assert_eq!(json["ticket"], Value::Null, "an unverified ticket is never shown");

    issuer.expect_reject(&[&code[..code.len() - 9]], "malformed");
    issuer.expect_reject(&["hello world"], "malformed");
    issuer.expect_reject(&["TX7:ABCDEF"], "unsupported_version");
    let json = issuer.expect_reject(&["--event", "43", &code], "wrong_event");
    assert_eq!(json["ticket"]["ticket_id"], 1001, "a genuine ticket is shown even when rejected");

    let (out, _) = issuer.verify(&[&code]);
    assert_eq!(out.code, 0, "{out:?}");
    let late = run(
        "gate-agent",
        &["verify", "--keyring", "keys/keyring.json", "--at", "2027-01-01T00:00:00Z", &code],
        issuer.path(),
    );
    assert_eq!(late.code, 1);
    assert!(late.stdout.contains(r#""reason":"invalid_time""#), "{late:?}");

    // Re-signed by another issuer.
    let other = Issuer::new();
    let foreign = other.mint(&[]);
    issuer.expect_reject(&[&foreign], "unknown_key");

    // The key retired before the scan.
    let out = run(
        "cloud-api",
        &["keys", "retire", "--dir", "keys", "--kid", &issuer.kid, "--at", "2026-11-30T00:00:00Z"],
        issuer.path(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    issuer.expect_reject(&[&code], "key_expired");
}

#[test]
fn usage_errors_exit_2_and_unsafe_keys_are_refused() {
    let issuer = Issuer::new();
    let (out, _) = issuer.verify(&[]);
    assert_eq!(out.code, 2, "no barcode: {out:?}");
    std::fs::write(issuer.path().join("bad.json"), "{").unwrap();
    let out = run("gate-agent", &["verify", "--keyring", "bad.json", "TX1:00"], issuer.path());
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("bad.json"), "the error names the file: {out:?}");
    let out = run("gate-agent", &["verify", "--keyring", "keys/keyring.json", "--image", "nope.png"], issuer.path());
    assert_eq!(out.code, 2, "{out:?}");

    let key = issuer.path().join("keys/signing-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(
        "cloud-api",
        &["tickets", "mint", "--key", "keys/signing-key.pem", "--event", "1", "--ticket", "1", "--type", "1"],
        issuer.path(),
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("chmod 600") && out.stdout.is_empty(), "{out:?}");

    let out = run("cloud-api", &["keys", "generate", "--dir", "keys"], issuer.path());
    assert_eq!(out.code, 1, "an existing key is never overwritten: {out:?}");
}
