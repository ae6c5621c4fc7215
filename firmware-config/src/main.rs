//! `firmware-config check FILE…`: validates device profiles; errors name the file
//! and the key. `firmware-config list` prints the built-in profile names.
//! Exit codes: 0 all valid, 1 some invalid, 2 usage error.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, files)) if cmd == "check" && !files.is_empty() => check(files),
        Some((cmd, [])) if cmd == "list" => {
            for name in firmware_config::names() {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: firmware-config check FILE...\n       firmware-config list");
            ExitCode::from(2)
        }
    }
}

fn check(files: &[String]) -> ExitCode {
    let mut ok = true;
    for file in files {
        let result = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| firmware_config::parse_profile(&text).map_err(|e| e.to_string()));
        match result {
            Ok(profile) => println!("{file}: ok ({})", profile.name()),
            Err(e) => {
                ok = false;
                eprintln!("{file}: {}", e.replace('\n', " "));
            }
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
