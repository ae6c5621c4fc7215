//! The QR test sets: the real photos of `tests/data/qr-photos`, and seeded
//! synthetic camera frames of real signed tickets, rendered with the
//! `qrcode` crate at 4 px/module, then warped (rotation up to 30°, corner skew up
//! to 10%), blurred (σ up to 2 px), downscaled (to 60%) and noised (σ up to 20 grey
//! levels).

#![allow(clippy::expect_used, reason = "test data generation fails loudly")]

use std::path::{Path, PathBuf};

use gate_agent::qr::LumaFrame;
use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{Interpolation, Projection, warp_into};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schema::{TicketClaims, TicketFlags, TicketSigner, Validity};

/// Where the real photo set lives: `TIXGATE_QR_PHOTOS`, or `tests/data/qr-photos` in the checkout.
pub fn photo_dir() -> PathBuf {
    std::env::var_os("TIXGATE_QR_PHOTOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("tests/data/qr-photos"))
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
            let code = signer.mint(&typical_claims(&mut rng));
            let frame = degrade(&render(&code), &mut rng);
            SynthCase { code, frame }
        })
        .collect()
}

/// A typical unseated ticket: event below 100,000, ticket id below 10^10, type below 50.
pub fn typical_claims(rng: &mut StdRng) -> TicketClaims {
    TicketClaims {
        event_id: rng.random_range(1..100_000),
        ticket_id: rng.random_range(1..10_000_000_000),
        ticket_type_id: rng.random_range(1..50),
        flags: TicketFlags::default(),
        validity: Validity::default(),
        seat: None,
    }
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

/// How one photo of a phone screen showing a code was taken. Drawn from a seed,
/// so a v1 and a v2 code can be photographed in exactly the same way.
#[derive(Debug, Clone, Copy)]
pub struct ScreenPhoto {
    /// Side of the symbol (quiet zone included) in the 640×480 photo, pixels.
    pub symbol_px: f32,
    /// Rotation of the phone in the picture, degrees.
    pub tilt_deg: f32,
    /// Perspective: each corner moves up to this fraction of the symbol.
    pub skew: f32,
    /// Screen black and white as the camera sees them (grey levels).
    pub black: f32,
    /// See `black`.
    pub white: f32,
    /// Reflection of a light on the glass: peak grey levels added, its radius as
    /// a fraction of the symbol, its centre as fractions of the symbol.
    pub glare: (f32, f32, f32, f32),
    /// Moiré between the screen's pixel grid and the sensor: amplitude (grey
    /// levels), period (pixels) and angle (radians) of the interference fringes.
    pub moire: (f32, f32, f32),
    /// Defocus, σ in pixels.
    pub blur: f32,
    /// Sensor noise, σ in grey levels.
    pub noise: f64,
}

/// `n` ways of photographing a phone screen, from `seed`.
pub fn screen_photos(n: usize, seed: u64) -> Vec<ScreenPhoto> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| ScreenPhoto {
            symbol_px: rng.random_range(130.0..340.0),
            tilt_deg: rng.random_range(-25.0..25.0),
            skew: rng.random_range(0.0..0.12),
            black: rng.random_range(15.0..70.0),
            white: rng.random_range(170.0..245.0),
            glare: (
                rng.random_range(0.0..200.0),
                rng.random_range(0.1..0.45),
                rng.random_range(0.1..0.9),
                rng.random_range(0.1..0.9),
            ),
            moire: (
                rng.random_range(0.0..35.0),
                rng.random_range(3.0..12.0),
                rng.random_range(0.0..std::f32::consts::PI),
            ),
            blur: rng.random_range(0.0..1.6),
            noise: rng.random_range(2.0..12.0),
        })
        .collect()
}

/// The symbol's side on the phone, in screen pixels: the wallet's ~400 CSS px
/// code at 1.5× (denser screens only make the pixel grid finer than the camera
/// resolves). Every version fills it, as the wallet draws in whole device pixels.
const SCREEN_SYMBOL_PX: u32 = 600;

/// A 640×480 grey photo of a phone screen showing `code` as the wallet draws it
/// (error correction `level`, 4-module quiet zone), taken as `shot` says. The screen's pixel
/// grid is drawn (a darker line between pixels), so resampling it onto the
/// sensor makes real aliasing moiré besides the fringes added.
pub fn photograph_screen(code: &str, level: qrcode::EcLevel, shot: &ScreenPhoto, seed: u64) -> LumaFrame {
    let mut rng = StdRng::seed_from_u64(seed);
    let qr = qrcode::QrCode::with_error_correction_level(code, level).expect("fits a QR code");
    let modules = qr.render::<Luma<u8>>().module_dimensions(1, 1).quiet_zone(true).build();
    let per_module = (SCREEN_SYMBOL_PX / modules.width()).max(1);
    let side = modules.width() * per_module;
    // Each screen pixel as 2×2 sensor-scale cells: one lit, the grid line between darker.
    let screen = GrayImage::from_fn(side * 2, side * 2, |x, y| {
        let lit = modules.get_pixel(x / 2 / per_module, y / 2 / per_module)[0] > 127;
        let level = if lit { shot.white } else { shot.black };
        let grid = if x % 2 == 1 || y % 2 == 1 { 0.8 } else { 1.0 };
        Luma([(level * grid).round() as u8])
    });

    let (w, h) = (640u32, 480u32);
    let s = shot.symbol_px;
    let (cx, cy) = (rng.random_range(s * 0.5..w as f32 - s * 0.5), rng.random_range(s * 0.5..h as f32 - s * 0.5));
    let (sin, cos) = shot.tilt_deg.to_radians().sin_cos();
    let half = s / 2.0;
    let to = [(-half, -half), (half, -half), (half, half), (-half, half)].map(|(x, y)| {
        let (jx, jy) = (rng.random_range(-1.0f32..1.0), rng.random_range(-1.0f32..1.0));
        (cx + x * cos - y * sin + jx * shot.skew * s, cy + x * sin + y * cos + jy * shot.skew * s)
    });
    let big = (side * 2) as f32;
    let from = [(0.0, 0.0), (big, 0.0), (big, big), (0.0, big)];
    let projection = Projection::from_control_points(from, to).expect("non-degenerate corners");
    // Around the screen: the phone's dark bezel and a hand.
    let mut photo = GrayImage::from_pixel(w, h, Luma([35]));
    warp_into(&screen, &projection, Interpolation::Bilinear, Luma([35]), &mut photo);

    let (glare, radius, gx, gy) = shot.glare;
    let (glare_x, glare_y) = (cx + (gx - 0.5) * s, cy + (gy - 0.5) * s);
    let glare_r2 = 2.0 * (radius * s).powi(2);
    let (amp, period, angle) = shot.moire;
    let (msin, mcos) = angle.sin_cos();
    for (x, y, p) in photo.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32, y as f32);
        let fringe = amp * (std::f32::consts::TAU * (fx * mcos + fy * msin) / period).sin();
        let light = glare * (-((fx - glare_x).powi(2) + (fy - glare_y).powi(2)) / glare_r2).exp();
        p[0] = (f32::from(p[0]) + fringe + light).clamp(0.0, 255.0) as u8;
    }
    let blurred = if shot.blur < 0.05 { photo } else { imageproc::filter::gaussian_blur_f32(&photo, shot.blur) };
    let pixels = blurred
        .into_raw()
        .into_iter()
        .map(|p| (f64::from(p) + gaussian(&mut rng) * shot.noise).round().clamp(0.0, 255.0) as u8)
        .collect();
    LumaFrame::new(pixels, w, h).expect("sized frame")
}
