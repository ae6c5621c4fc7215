//! The QR test sets: the real photos of `shared/datasets/qr-photos`, and seeded
//! synthetic camera frames of real signed tickets, rendered with the
//! `qrcode` crate at 4 px/module, then warped (rotation up to 30°, corner skew up
//! to 10%), blurred (σ up to 2 px), downscaled (to 60%) and noised (σ up to 20 grey
//! levels) — the recipe of `shared/research/qr-decode.md` §5.

#![allow(clippy::expect_used, reason = "test data generation fails loudly")]

use std::path::{Path, PathBuf};

use gate_agent::qr::LumaFrame;
use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{Interpolation, Projection, warp_into};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schema::{TicketClaims, TicketFlags, TicketSigner, Validity};

/// Where the real photo set lives: `TIXGATE_QR_PHOTOS`, or `shared/` beside the checkout.
pub fn photo_dir() -> PathBuf {
    std::env::var_os("TIXGATE_QR_PHOTOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("../shared/datasets/qr-photos"))
}

/// One photo of the set and the exact text it holds.
pub struct PhotoCase {
    /// The image file.
    pub path: PathBuf,
    /// Expected text, byte for byte.
    pub expected: String,
}

/// Every photo of the set (`qrcode-1` … `qrcode-6`), sorted; an error if the set is missing.
pub fn photo_cases(dir: &Path) -> Result<Vec<PhotoCase>, String> {
    let mut cases = Vec::new();
    for folder in 1..=6 {
        let sub = dir.join(format!("qrcode-{folder}"));
        let entries = std::fs::read_dir(&sub).map_err(|e| format!("photo set missing at {}: {e}", sub.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_some_and(|e| e == "png") {
                let txt = path.with_extension("txt");
                let expected = std::fs::read(&txt).map_err(|e| format!("{}: {e}", txt.display()))?;
                let expected = String::from_utf8(expected).map_err(|e| format!("{}: {e}", txt.display()))?;
                cases.push(PhotoCase { path, expected });
            }
        }
    }
    cases.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(cases)
}

/// One degraded frame and the code it shows.
pub struct SynthCase {
    /// The barcode text rendered.
    pub code: String,
    /// The degraded frame.
    pub frame: LumaFrame,
}

const PX_PER_MODULE: u32 = 4;

/// `n` degraded frames from seed `seed`; identical for the same arguments.
pub fn degraded_set(n: usize, seed: u64) -> Vec<SynthCase> {
    let mut rng = StdRng::seed_from_u64(seed);
    let signer = TicketSigner::from_secret_bytes(&[42; 32]);
    (0..n)
        .map(|_| {
            let claims = TicketClaims {
                event_id: rng.random_range(1..100_000),
                ticket_id: rng.random_range(1..10_000_000_000),
                ticket_type_id: rng.random_range(1..50),
                flags: TicketFlags::default(),
                validity: Validity::default(),
                seat: None,
            };
            let code = signer.mint(&claims);
            let frame = degrade(&render(&code), &mut rng);
            SynthCase { code, frame }
        })
        .collect()
}

/// The code drawn black on white, 4 px per module, 4-module quiet zone.
pub fn render(code: &str) -> GrayImage {
    let qr = qrcode::QrCode::with_error_correction_level(code, qrcode::EcLevel::M).expect("fits a QR code");
    qr.render::<Luma<u8>>().module_dimensions(PX_PER_MODULE, PX_PER_MODULE).quiet_zone(true).build()
}

fn degrade(code: &GrayImage, rng: &mut StdRng) -> LumaFrame {
    let side = code.width() as f32;
    let canvas_side = (side * 1.6) as u32;
    let centre = canvas_side as f32 / 2.0;
    let theta = rng.random_range(0.0f32..30.0).to_radians() * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let (sin, cos) = theta.sin_cos();
    let half = side / 2.0;
    let corners = [(-half, -half), (half, -half), (half, half), (-half, half)];
    let to = corners.map(|(x, y)| {
        let (jx, jy) = (rng.random_range(-1.0f32..1.0), rng.random_range(-1.0f32..1.0));
        (centre + x * cos - y * sin + jx * 0.10 * side, centre + x * sin + y * cos + jy * 0.10 * side)
    });
    let from = [(0.0, 0.0), (side, 0.0), (side, side), (0.0, side)];
    let projection = Projection::from_control_points(from, to).expect("non-degenerate corners");
    let mut canvas = GrayImage::from_pixel(canvas_side, canvas_side, Luma([255]));
    warp_into(code, &projection, Interpolation::Bilinear, Luma([255]), &mut canvas);

    let sigma = rng.random_range(0.0f32..2.0);
    let blurred = if sigma < 0.01 { canvas } else { imageproc::filter::gaussian_blur_f32(&canvas, sigma) };
    let scale = rng.random_range(0.6f32..1.0);
    let out_side = (canvas_side as f32 * scale).round() as u32;
    let scaled = image::imageops::resize(&blurred, out_side, out_side, image::imageops::FilterType::Triangle);
    let noise_sigma = rng.random_range(0.0f64..20.0);
    let pixels = scaled
        .into_raw()
        .into_iter()
        .map(|p| (f64::from(p) + gaussian(rng) * noise_sigma).round().clamp(0.0, 255.0) as u8)
        .collect();
    LumaFrame::new(pixels, out_side, out_side).expect("square frame")
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A `width`×`height` frame of mid-grey sensor noise with `code` drawn at
/// `px_per_module` off-centre; an empty `code` gives the noise alone.
pub fn place_in_frame(code: &str, width: u32, height: u32, px_per_module: u32, seed: u64) -> LumaFrame {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut frame =
        GrayImage::from_fn(width, height, |_, _| Luma([(128.0 + gaussian(&mut rng) * 12.0).clamp(0.0, 255.0) as u8]));
    if !code.is_empty() {
        let qr = qrcode::QrCode::with_error_correction_level(code, qrcode::EcLevel::M).expect("fits a QR code");
        let symbol = qr.render::<Luma<u8>>().module_dimensions(px_per_module, px_per_module).quiet_zone(true).build();
        image::imageops::overlay(&mut frame, &symbol, i64::from(width) * 3 / 5, i64::from(height) / 5);
    }
    let (w, h) = frame.dimensions();
    LumaFrame::new(frame.into_raw(), w, h).expect("sized frame")
}
