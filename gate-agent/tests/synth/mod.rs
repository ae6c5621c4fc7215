//! Seeded synthetic camera frames of real signed tickets: rendered with the
//! `qrcode` crate at 4 px/module, then warped (rotation up to 30°, corner skew up
//! to 10%), blurred (σ up to 2 px), downscaled (to 60%) and noised (σ up to 20 grey
//! levels) — the recipe of `shared/research/qr-decode.md` §5.

use gate_agent::qr::LumaFrame;
use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{Interpolation, Projection, warp_into};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schema::{TicketClaims, TicketFlags, TicketSigner, Validity};

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
    let qr = qrcode::QrCode::with_error_correction_level(code, qrcode::EcLevel::M)
        .expect("fits a QR code");
    qr.render::<Luma<u8>>()
        .module_dimensions(PX_PER_MODULE, PX_PER_MODULE)
        .quiet_zone(true)
        .build()
}

fn degrade(code: &GrayImage, rng: &mut StdRng) -> LumaFrame {
    let side = code.width() as f32;
    let canvas_side = (side * 1.6) as u32;
    let centre = canvas_side as f32 / 2.0;
    let theta =
        rng.random_range(0.0f32..30.0).to_radians() * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let (sin, cos) = theta.sin_cos();
    let half = side / 2.0;
    let corners = [(-half, -half), (half, -half), (half, half), (-half, half)];
    let to = corners.map(|(x, y)| {
        let (jx, jy) = (
            rng.random_range(-1.0f32..1.0),
            rng.random_range(-1.0f32..1.0),
        );
        (
            centre + x * cos - y * sin + jx * 0.10 * side,
            centre + x * sin + y * cos + jy * 0.10 * side,
        )
    });
    let from = [(0.0, 0.0), (side, 0.0), (side, side), (0.0, side)];
    let projection = Projection::from_control_points(from, to).expect("non-degenerate corners");
    let mut canvas = GrayImage::from_pixel(canvas_side, canvas_side, Luma([255]));
    warp_into(
        code,
        &projection,
        Interpolation::Bilinear,
        Luma([255]),
        &mut canvas,
    );

    let sigma = rng.random_range(0.0f32..2.0);
    let blurred = if sigma < 0.01 {
        canvas
    } else {
        imageproc::filter::gaussian_blur_f32(&canvas, sigma)
    };
    let scale = rng.random_range(0.6f32..1.0);
    let out_side = (canvas_side as f32 * scale).round() as u32;
    let scaled = image::imageops::resize(
        &blurred,
        out_side,
        out_side,
        image::imageops::FilterType::Triangle,
    );
    let noise_sigma = rng.random_range(0.0f64..20.0);
    let pixels = scaled
        .into_raw()
        .into_iter()
        .map(|p| {
            (f64::from(p) + gaussian(rng) * noise_sigma)
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect();
    LumaFrame::new(pixels, out_side, out_side).expect("square frame")
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
