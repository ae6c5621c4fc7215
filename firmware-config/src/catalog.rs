//! The built-in profiles (the files in `profiles/`), looked up by name.

use crate::profile::{Profile, ProfileError, parse_profile};

/// Every shipped profile file: (file name, text).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("honeywell-voyager-usb-cdc.toml", include_str!("../profiles/honeywell-voyager-usb-cdc.toml")),
    ("zebra-ds2208-usb-cdc.toml", include_str!("../profiles/zebra-ds2208-usb-cdc.toml")),
    ("newland-fm430-rs232.toml", include_str!("../profiles/newland-fm430-rs232.toml")),
    ("relay-board-2ch.toml", include_str!("../profiles/relay-board-2ch.toml")),
    ("tripod-turnstile-feedback.toml", include_str!("../profiles/tripod-turnstile-feedback.toml")),
    ("uvc-camera-720p.toml", include_str!("../profiles/uvc-camera-720p.toml")),
    ("uvc-camera-vga.toml", include_str!("../profiles/uvc-camera-vga.toml")),
];

/// The built-in profile with this name.
pub fn built_in(name: &str) -> Option<Result<Profile, ProfileError>> {
    BUILT_IN.iter().map(|(_, text)| parse_profile(text)).find(|p| p.as_ref().is_ok_and(|p| p.name() == name))
}

/// Names of all built-in profiles that parse.
pub fn names() -> Vec<String> {
    BUILT_IN.iter().filter_map(|(_, text)| parse_profile(text).ok()).map(|p| p.name().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_profile_parses_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (file, text) in BUILT_IN {
            let profile = parse_profile(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(format!("{}.toml", profile.name()), *file, "file name matches profile name");
            assert!(seen.insert(profile.name().to_owned()));
        }
        let on_disk =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles")).expect("profiles dir").count();
        assert_eq!(on_disk, BUILT_IN.len(), "every file in profiles/ is built in");
    }
}
