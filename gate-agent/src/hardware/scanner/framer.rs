//! Cuts a serial scanner's byte stream into codes: splits on the profile's
//! terminator, strips the configured prefix/suffix, and survives noise — partial
//! lines, binary garbage, lines longer than the profile allows (discarded up to the
//! next terminator).
//!
//! Pure, and free of the crate's other modules: the fuzz target compiles this file
//! by path, without the daemon around it.

use firmware_config::ScannerProfile;

/// Splits a scanner's byte stream into codes.
#[derive(Debug)]
pub struct CodeFramer {
    terminator: u8,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    max_len: usize,
    line: Vec<u8>,
    discarding: bool,
    /// Lines dropped for being too long.
    pub dropped: u64,
}

impl CodeFramer {
    /// A framer for this scanner profile.
    pub fn new(profile: &ScannerProfile) -> Self {
        let terminator = profile.terminator.bytes().last().copied().unwrap_or(b'\r');
        Self {
            terminator,
            prefix: profile.prefix.as_bytes().to_vec(),
            suffix: profile.suffix.as_bytes().to_vec(),
            max_len: profile.max_code_len,
            line: Vec::new(),
            discarding: false,
            dropped: 0,
        }
    }

    /// Feeds bytes as they arrive; returns the codes completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut codes = Vec::new();
        for &b in bytes {
            if b == self.terminator {
                if !self.discarding
                    && let Some(code) = self.finish()
                {
                    codes.push(code);
                }
                self.line.clear();
                self.discarding = false;
            } else if self.discarding {
            } else if self.line.len() >= self.max_len {
                self.line.clear();
                self.discarding = true;
                self.dropped += 1;
            } else {
                self.line.push(b);
            }
        }
        codes
    }

    fn finish(&self) -> Option<String> {
        let mut body: &[u8] = &self.line;
        // A CR before an LF terminator, NULs and spaces from line noise.
        while let [rest @ .., last] = body
            && (last.is_ascii_whitespace() || *last == 0)
        {
            body = rest;
        }
        while let [first, rest @ ..] = body
            && (first.is_ascii_whitespace() || *first == 0)
        {
            body = rest;
        }
        let body = body.strip_prefix(self.prefix.as_slice()).unwrap_or(body);
        let body = body.strip_suffix(self.suffix.as_slice()).unwrap_or(body);
        (!body.is_empty()).then(|| String::from_utf8_lossy(body).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(terminator: &str, prefix: &str, max: usize) -> ScannerProfile {
        let text = format!(
            "kind = \"scanner\"\nname = \"t\"\ndescription = \"t\"\nbaud = 9600\ndata_bits = 8\nparity = \"none\"\nstop_bits = 1\nterminator = \"{terminator}\"\nprefix = \"{prefix}\"\nmax_code_len = {max}\n"
        );
        match firmware_config::parse_profile(&text) {
            Ok(firmware_config::Profile::Scanner(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn how_the_stream_is_cut_into_reads_does_not_matter(
            codes in proptest::collection::vec("[A-Z0-9:$%*+./ -]{1,80}", 0..8),
            cuts in proptest::collection::vec(0usize..1_000, 0..10),
        ) {
            let stream: Vec<u8> = codes.iter().flat_map(|c| format!("{c}\r").into_bytes()).collect();
            let whole = CodeFramer::new(&profile("cr", "", 64)).push(&stream);
            let mut framer = CodeFramer::new(&profile("cr", "", 64));
            let mut pieces = Vec::new();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut last = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                pieces.extend(framer.push(&stream[last..cut]));
                last = cut;
            }
            proptest::prop_assert_eq!(&pieces, &whole);
            let expected: Vec<String> =
                codes.iter().filter(|c| c.len() <= 64).map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
            proptest::prop_assert_eq!(whole, expected);
        }

        #[test]
        fn any_bytes_give_codes_no_longer_than_the_profile_allows(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let codes = CodeFramer::new(&profile("crlf", "STX", 64)).push(&bytes);
            proptest::prop_assert!(codes.iter().all(|c| c.len() <= 64 * 3 && !c.contains('\n')));
        }
    }

    #[test]
    fn codes_split_across_reads_are_joined() {
        let mut f = CodeFramer::new(&profile("cr", "", 64));
        assert!(f.push(b"TX1:AB").is_empty());
        assert_eq!(f.push(b"C\rTX1:D\r\rTX1:"), vec!["TX1:ABC", "TX1:D"]);
        assert_eq!(f.push(b"E\r"), vec!["TX1:E"]);
    }

    #[test]
    fn prefix_crlf_noise_and_overlong_lines_are_handled() {
        let mut f = CodeFramer::new(&profile("crlf", "STX", 64));
        assert_eq!(f.push(b"STXTX1:AB\r\n\x00\r\n"), vec!["TX1:AB"]);
        let long = [b'A'; 100];
        assert!(f.push(&long).is_empty());
        assert_eq!(f.push(b"more\r\nSTXTX1:OK\r\n"), vec!["TX1:OK"], "the overlong line is dropped whole");
        assert_eq!(f.dropped, 1);
        assert_eq!(f.push(b"\xff\xfe\n"), vec!["\u{fffd}\u{fffd}"], "garbage is passed on and rejected later");
    }
}
