//! Holder details sealed per ticket, so a lost handheld leaks nobody's name.
//!
//! The cloud encrypts each holder name with ChaCha20-Poly1305 under a key derived
//! (HKDF-SHA256) from that ticket's barcode signature, which only the holder's
//! code carries. A gate can read the name only while that ticket is being
//! scanned; a stolen replica holds ciphertext and ticket ids, nothing more. Only
//! the name is shipped at all: gates have no use for e-mail addresses.
//! (alf.io protects its offline attendee data the same way.)

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::barcode::SIGNATURE_LEN;

/// Length of the random nonce stored in front of each sealed name.
pub const NONCE_LEN: usize = 12;
const SALT: &[u8] = b"tixgate/holder/v1";
/// Longest name sealed, in bytes.
pub const MAX_NAME_LEN: usize = 200;

fn cipher(barcode_signature: &[u8; SIGNATURE_LEN], ticket_id: u64) -> ChaCha20Poly1305 {
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(SALT), barcode_signature).expand(&ticket_id.to_be_bytes(), &mut key);
    ChaCha20Poly1305::new(&Key::from(key))
}

/// Seals a holder name (cut to [`MAX_NAME_LEN`] bytes) with a caller-chosen random nonce.
pub fn seal(barcode_signature: &[u8; SIGNATURE_LEN], ticket_id: u64, name: &str, nonce: [u8; NONCE_LEN]) -> Vec<u8> {
    let mut end = name.len().min(MAX_NAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let plaintext = name.get(..end).unwrap_or_default().as_bytes();
    let ciphertext = cipher(barcode_signature, ticket_id).encrypt(&Nonce::from(nonce), plaintext).unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

/// Opens a sealed name with the scanned barcode's signature; `None` if it does
/// not belong to this barcode or was altered.
pub fn open(barcode_signature: &[u8; SIGNATURE_LEN], ticket_id: u64, sealed: &[u8]) -> Option<String> {
    let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let plaintext = cipher(barcode_signature, ticket_id).decrypt(&Nonce::from(nonce), ciphertext).ok()?;
    String::from_utf8(plaintext).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_barcode_opens_a_name() {
        let sig = [7u8; SIGNATURE_LEN];
        let sealed = seal(&sig, 42, "Ada Lovelace", [1; NONCE_LEN]);
        assert!(!sealed.windows(3).any(|w| w == b"Ada"), "no plaintext in the sealed bytes");
        assert_eq!(open(&sig, 42, &sealed).as_deref(), Some("Ada Lovelace"));
        assert_eq!(open(&[8; SIGNATURE_LEN], 42, &sealed), None, "another barcode");
        assert_eq!(open(&sig, 43, &sealed), None, "another ticket");
        let mut altered = sealed.clone();
        altered[NONCE_LEN] ^= 1;
        assert_eq!(open(&sig, 42, &altered), None);
        assert_eq!(open(&sig, 42, &sealed[..5]), None);
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let sig = [7u8; SIGNATURE_LEN];
        let long = "é".repeat(150);
        let opened = open(&sig, 1, &seal(&sig, 1, &long, [0; NONCE_LEN])).expect("opens");
        assert!(opened.len() <= MAX_NAME_LEN && long.starts_with(&opened));
    }
}
