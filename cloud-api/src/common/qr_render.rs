//! Renders a barcode as a QR code image (PNG or SVG) with the `qrcode` crate.
//!
//! Level M (15% of the symbol may be damaged) is the trade-off printed tickets
//! and phone screens both tolerate; the Base45 text is encoded in the QR
//! alphanumeric mode, which keeps a plain ticket at version 6.

use std::path::Path;

use qrcode::{EcLevel, QrCode, Version};

/// Error-correction level of every ticket QR code.
pub const EC_LEVEL: EcLevel = EcLevel::M;
/// Pixels per module in PNG output: large enough for print and phone screens.
const PNG_MODULE_PX: u32 = 8;

/// Why a QR code could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum QrRenderError {
    /// The text does not fit any QR code at level M.
    #[error("text does not fit a QR code: {0}")]
    TooLong(qrcode::types::QrError),
    /// The output file name ends neither in .png nor .svg.
    #[error("{0}: output must end in .png or .svg")]
    UnknownFormat(String),
    /// Writing the file failed.
    #[error("{path}: {reason}")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// The QR code of a barcode text.
pub fn qr_code(text: &str) -> Result<QrCode, QrRenderError> {
    QrCode::with_error_correction_level(text, EC_LEVEL).map_err(QrRenderError::TooLong)
}

/// The QR version (1–40) a text needs at level M.
pub fn qr_version(text: &str) -> Result<i16, QrRenderError> {
    Ok(match qr_code(text)?.version() {
        Version::Normal(v) | Version::Micro(v) => v,
    })
}

/// PNG bytes of the QR code, black on white with a quiet zone.
pub fn png(text: &str) -> Result<Vec<u8>, QrRenderError> {
    let image = qr_code(text)?.render::<image::Luma<u8>>().module_dimensions(PNG_MODULE_PX, PNG_MODULE_PX).build();
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| QrRenderError::Write { path: "<memory>".into(), reason: e.to_string() })?;
    Ok(out.into_inner())
}

/// SVG text of the QR code.
pub fn svg(text: &str) -> Result<String, QrRenderError> {
    Ok(qr_code(text)?.render::<qrcode::render::svg::Color<'_>>().min_dimensions(256, 256).build())
}

/// Writes the QR code to `path`, PNG or SVG by extension.
pub fn write_file(text: &str, path: &Path) -> Result<(), QrRenderError> {
    let shown = path.display().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("png") => png(text)?,
        Some("svg") => svg(text)?.into_bytes(),
        _ => return Err(QrRenderError::UnknownFormat(shown)),
    };
    std::fs::write(path, bytes).map_err(|e| QrRenderError::Write { path: shown, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::{SeatLabel, TicketClaims, TicketFlags, TicketSigner, Validity};

    fn claims(seat: Option<&str>, validity: Validity) -> TicketClaims {
        TicketClaims {
            event_id: u64::from(u32::MAX),
            ticket_id: u64::MAX,
            ticket_type_id: u32::MAX,
            flags: TicketFlags { paper: true, reentry_allowed: true },
            validity,
            seat: seat.and_then(|s| SeatLabel::new(s).ok()),
        }
    }

    #[test]
    fn a_ticket_without_seat_fits_qr_version_7_at_level_m() {
        let signer = TicketSigner::from_secret_bytes(&[9; 32]);
        let window = Validity { not_before: Some(1_790_000_000), not_after: Some(1_790_086_400) };
        let plain = signer.mint(&claims(None, Validity::default()));
        let windowed = signer.mint(&claims(None, window));
        let seated = signer.mint(&claims(Some("BLOCK C ROW 12 SEAT 104"), window));
        let (v_plain, v_window, v_seat) = (
            qr_version(&plain).expect("fits"),
            qr_version(&windowed).expect("fits"),
            qr_version(&seated).expect("fits"),
        );
        println!(
            "QR version at level M: plain ticket {v_plain} ({} chars), with validity window {v_window} ({} chars), with window and 23-char seat {v_seat} ({} chars)",
            plain.len(),
            windowed.len(),
            seated.len()
        );
        assert!(v_plain <= 6, "plain ticket needs version {v_plain}");
        assert!(v_window <= 7, "windowed ticket needs version {v_window}");
        assert!(v_seat <= 8, "seated ticket needs version {v_seat}");
    }

    #[test]
    fn unknown_output_format_is_refused() {
        assert!(matches!(write_file("TX1:00", Path::new("code.gif")), Err(QrRenderError::UnknownFormat(_))));
    }

    #[test]
    fn svg_and_png_are_produced() {
        assert!(svg("TX1:ABC").expect("svg").contains("<svg"));
        assert!(png("TX1:ABC").expect("png").starts_with(b"\x89PNG"));
    }
}
