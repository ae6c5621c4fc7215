//! Any uploaded body under any of the accepted types: judged without a panic;
//! a picture that passes has a size within the limits and a thumbnail that is
//! itself a readable JPEG no larger than the edge.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/catalog/media/inspect.rs"]
mod inspect;

const TYPES: [&str; 4] = ["image/jpeg", "image/png", "video/mp4", "video/webm"];

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    let declared = TYPES[usize::from(which) % TYPES.len()];
    let Ok(found) = inspect::inspect(declared, body) else { return };
    assert_eq!(found.content_type, declared);
    if let (Some((width, height)), Some(thumbnail)) = (found.size, found.thumbnail) {
        assert!(width <= inspect::MAX_IMAGE_EDGE && height <= inspect::MAX_IMAGE_EDGE);
        let small = image::load_from_memory_with_format(&thumbnail, image::ImageFormat::Jpeg).expect("a JPEG thumbnail");
        assert!(small.width() <= inspect::THUMBNAIL_EDGE && small.height() <= inspect::THUMBNAIL_EDGE);
    }
});
