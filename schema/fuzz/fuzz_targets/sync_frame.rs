//! Any bytes a gate or the hub receives: refused or opened, never a panic. The
//! input is also sealed as a body by a known key, so the message decoders behind
//! the signature check see arbitrary bytes too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schema::sync::{self, GateMessage, HubMessage, NodeKey, Recipient};

fuzz_target!(|data: &[u8]| {
    let key = NodeKey::from_secret_bytes(&[3; 32]);
    let public = key.public();
    if let Ok(frame) = sync::frame::open(data, |_| Some(public)) {
        let _ = GateMessage::decode(frame.body);
    }
    let sealed = key.seal("north-1", Recipient::Node("hub"), data);
    if let Ok(frame) = sync::frame::open(&sealed, |_| Some(public)) {
        let _ = GateMessage::decode(frame.body);
        let _ = HubMessage::decode(frame.body);
    }
});
