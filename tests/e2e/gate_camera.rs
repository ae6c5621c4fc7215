//! The camera path end to end: recorded frames (noisy 640x480 scenes) played
//! through `gate-agent run` — decode, debounce, decide, record.

use std::process::{Command, Stdio};

use serde_json::Value;
use tixgate_tests::gate_fixture::GateFixture;
use tixgate_tests::qr_sets::place_in_frame;
use tixgate_tests::{binary, run};

fn save(frame: &gate_agent::qr::LumaFrame, path: &std::path::Path) {
    image::GrayImage::from_raw(frame.width, frame.height, frame.pixels.clone()).unwrap().save(path).unwrap();
}

#[test]
fn recorded_frames_are_decoded_debounced_and_decided() {
    let gate = GateFixture::new(2, "stdin = false\n[camera]\nprofile = \"uvc-camera-vga\"\nframes = \"frames\"\n");
    let (p, codes) = (gate.path(), &gate.codes);
    let mut forged = codes[1].clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });

    // A person holds ticket 0 up for three frames, then nothing, a forgery, ticket 1.
    let frames = p.join("frames");
    std::fs::create_dir(&frames).unwrap();
    let scenes = [&codes[0], &codes[0], &codes[0], "", &forged, &codes[1]];
    for (i, code) in scenes.iter().enumerate() {
        save(&place_in_frame(code, 640, 480, 3, i as u64), &frames.join(format!("{i:03}.png")));
    }

    let out = Command::new(binary("gate-agent"))
        .args(["run", "--config", "gate.toml"])
        .current_dir(p)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let got: Vec<(&str, Option<&str>)> =
        lines.iter().map(|l| (l["decision"].as_str().unwrap(), l["reason"].as_str())).collect();
    assert_eq!(
        got,
        [("accept", None), ("reject", Some("bad_signature")), ("accept", None)],
        "three frames of one code are one scan"
    );
}

#[test]
fn a_live_camera_needs_the_camera_feature_or_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gate.toml"),
        "gate_id = \"cam\"\nvenue_id = 1\nlist_id = 1\nstate_dir = \"state\"\nkeyring = \"k.json\"\n\
         [camera]\nprofile = \"uvc-camera-vga\"\ndevice = 0\nframes = \"x\"\n",
    )
    .unwrap();
    let out = run("gate-agent", &["run", "--config", "gate.toml"], dir.path());
    assert_eq!(out.code, 78, "a config error is EX_CONFIG: {out:?}");
    assert!(out.stderr.contains("exactly one of `device` and `frames`"), "{out:?}");
}
