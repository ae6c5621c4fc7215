//! Any bytes a gate or the hub receives: refused or opened, never a panic. The
//! input is also signed and linked as a body by known keys, so the message
//! decoders behind the signature and tag checks see arbitrary bytes too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schema::sync::{self, GateMessage, HubMessage, NodeKey, Recipient, SenderKeys};

fuzz_target!(|data: &[u8]| {
    let (key, hub) = (NodeKey::from_secret_bytes(&[3; 32]), NodeKey::from_secret_bytes(&[4; 32]));
    let keys = SenderKeys { public: key.public(), link: hub.link_key(&key.public()) };
    if let Ok(frame) = sync::frame::open(data, |_| Some(keys.clone())) {
        let _ = GateMessage::decode(frame.body);
    }
    let signed = key.seal("north-1", Recipient::Node("hub"), data);
    let linked = key.link_key(&hub.public()).map(|link| link.seal("north-1", "hub", data));
    for sealed in std::iter::once(signed).chain(linked) {
        if let Ok(frame) = sync::frame::open(&sealed, |_| Some(keys.clone())) {
            let _ = GateMessage::decode(frame.body);
            let _ = HubMessage::decode(frame.body);
        }
    }
});
