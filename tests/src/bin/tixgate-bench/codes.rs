//! `tixgate-bench codes`: static (v1) against rotating (v2) ticket codes: their
//! size, the QR version and module size they need, and how often and how fast
//! the gate reads them from photos of a phone screen, each v2 code photographed
//! exactly as its v1 twin. The reference in the same run is the v1 code.

use std::path::Path;

use gate_agent::qr::{LumaFrame, QrReader};
use qrcode::EcLevel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schema::{HolderSigner, TicketSigner};
use serde_json::json;
use tixgate_tests::qr_sets::{ScreenPhoto, photograph_screen, screen_photos, typical_claims};

use crate::qr::{Tally, bare_rxing};

/// Photos per code version.
const PHOTOS: usize = 200;
/// Photos of each version written by `--save`.
const SAVED: usize = 6;
/// The wallet's room for the code on a 430 CSS px wide phone (wallet.js: width − 32),
/// at a device pixel ratio of 3: modules are whole device pixels.
const WALLET_ROOM_CSS_PX: u32 = 398;
const DEVICE_PIXEL_RATIO: u32 = 3;

/// One ticket's two codes.
struct Pair {
    v1: String,
    v2: String,
}

fn tickets(n: usize, seed: u64) -> anyhow::Result<Vec<Pair>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let issuer = TicketSigner::from_secret_bytes(&[42; 32]);
    (0..n)
        .map(|i| {
            let claims = typical_claims(&mut rng);
            let holder = HolderSigner::from_secret_bytes(&[(i % 250) as u8 + 1; 32]);
            let bound = issuer.bind(&claims, &holder.verifying_key())?;
            let v2 = holder.show(&bound, rng.random_range(1_800_000_000..1_900_000_000));
            Ok(Pair { v1: issuer.mint(&claims), v2 })
        })
        .collect()
}

/// QR version and side in modules (quiet zone excluded) at `level`.
fn symbol(code: &str, level: EcLevel) -> anyhow::Result<(i16, usize)> {
    let qr = qrcode::QrCode::with_error_correction_level(code, level)?;
    let version = match qr.version() {
        qrcode::Version::Normal(v) | qrcode::Version::Micro(v) => v,
    };
    Ok((version, qr.width()))
}

/// Figures for one code version.
struct Measured {
    chars: (usize, usize),
    versions: (i16, i16),
    modules: usize,
    wallet_px_per_module: f64,
    photo_px_per_module: (f32, f32),
    ours: Tally,
    bare: Tally,
    /// Read rate of ours by photo pixels per module: < 2.5, 2.5–3.5, ≥ 3.5.
    by_size: [(usize, usize); 3],
}

fn measure(
    codes: &[&str],
    level: EcLevel,
    shots: &[ScreenPhoto],
    reader: &QrReader,
    save: Option<(&Path, &str)>,
) -> anyhow::Result<Measured> {
    let chars = codes.iter().map(|c| c.len());
    let chars = (chars.clone().min().unwrap_or(0), chars.max().unwrap_or(0));
    let symbols = codes.iter().map(|c| symbol(c, level)).collect::<anyhow::Result<Vec<_>>>()?;
    let versions = symbols.iter().map(|s| s.0);
    let versions = (versions.clone().min().unwrap_or(0), versions.max().unwrap_or(0));
    let modules = symbols.iter().map(|s| s.1).max().unwrap_or(0);
    let with_quiet = modules as u32 + 8;
    let per_module = |shot: &ScreenPhoto| shot.symbol_px / with_quiet as f32;
    let sizes = shots.iter().map(per_module);
    let photo_px_per_module = (sizes.clone().fold(f32::INFINITY, f32::min), sizes.fold(0.0f32, f32::max));
    let frames: Vec<LumaFrame> = codes
        .iter()
        .zip(shots)
        .enumerate()
        .map(|(i, (code, shot))| photograph_screen(code, level, shot, i as u64))
        .collect();
    if let Some((dir, name)) = save {
        std::fs::create_dir_all(dir)?;
        for (i, frame) in frames.iter().take(SAVED).enumerate() {
            let image = image::GrayImage::from_raw(frame.width, frame.height, frame.pixels.clone())
                .ok_or_else(|| anyhow::anyhow!("frame size"))?;
            image.save(dir.join(format!("{name}-{i}.png")))?;
        }
    }
    let pairs = || frames.iter().zip(codes.iter().copied());
    let ours = Tally::over(pairs(), |f| reader.decode(f).ok());
    let bare = Tally::over(pairs(), bare_rxing);
    let mut by_size = [(0, 0); 3];
    for (read, shot) in ours.each.iter().zip(shots) {
        let bucket = match per_module(shot) {
            p if p < 2.5 => 0,
            p if p < 3.5 => 1,
            _ => 2,
        };
        by_size[bucket].1 += 1;
        by_size[bucket].0 += usize::from(*read);
    }
    Ok(Measured {
        chars,
        versions,
        modules,
        wallet_px_per_module: f64::from(WALLET_ROOM_CSS_PX * DEVICE_PIXEL_RATIO / with_quiet)
            / f64::from(DEVICE_PIXEL_RATIO),
        photo_px_per_module,
        ours,
        bare,
        by_size,
    })
}

fn print(name: &str, m: &Measured) {
    println!(
        "{name}: {}–{} characters, QR version {}–{} ({} modules), {:.2} CSS px per module in the wallet",
        m.chars.0, m.chars.1, m.versions.0, m.versions.1, m.modules, m.wallet_px_per_module
    );
    println!(
        "  {} phone-screen photos at {:.1}–{:.1} px/module: ours {}/{} ({:.1}%), {} misread, p50 {:.2} ms, p95 {:.2} ms; \
         one bare rxing pass {:.1}%",
        m.ours.total,
        m.photo_px_per_module.0,
        m.photo_px_per_module.1,
        m.ours.read,
        m.ours.total,
        m.ours.rate() * 100.0,
        m.ours.misread,
        m.ours.p(0.5),
        m.ours.p(0.95),
        m.bare.rate() * 100.0
    );
    let [small, mid, large] = m.by_size;
    println!(
        "  read by photo px/module: <2.5 {}/{}, 2.5–3.5 {}/{}, ≥3.5 {}/{}",
        small.0, small.1, mid.0, mid.1, large.0, large.1
    );
}

fn rate(bucket: (usize, usize)) -> Option<f64> {
    (bucket.1 > 0).then(|| bucket.0 as f64 / bucket.1 as f64)
}

/// Runs the comparison and prints its figures and JSON line.
pub fn run(save: Option<&Path>) -> anyhow::Result<()> {
    let pairs = tickets(PHOTOS, 20_261_130)?;
    let shots = screen_photos(PHOTOS, 7_130);
    let reader = QrReader::default();
    let v1_codes: Vec<&str> = pairs.iter().map(|p| p.v1.as_str()).collect();
    let v2_codes: Vec<&str> = pairs.iter().map(|p| p.v2.as_str()).collect();
    let v1 = measure(&v1_codes, EcLevel::M, &shots, &reader, save.map(|d| (d, "v1")))?;
    let v2 = measure(&v2_codes, EcLevel::M, &shots, &reader, save.map(|d| (d, "v2")))?;
    // The wallet could trade error correction for larger modules.
    let v2_low = measure(&v2_codes, EcLevel::L, &shots, &reader, None)?;
    print("v1 (static), level M", &v1);
    print("v2 (rotating), level M", &v2);
    print("v2 (rotating), level L", &v2_low);
    let time_ratio = v2.ours.p(0.5) / v1.ours.p(0.5);
    println!(
        "v2 against v1 on the same photos: read rate {:+.1} points at level M ({:+.1} at L), p50 decode time ×{time_ratio:.2}",
        (v2.ours.rate() - v1.ours.rate()) * 100.0,
        (v2_low.ours.rate() - v1.ours.rate()) * 100.0,
    );
    let json = |m: &Measured| {
        json!({
            "chars_max": m.chars.1,
            "qr_version_max": m.versions.1,
            "modules": m.modules,
            "wallet_css_px_per_module": m.wallet_px_per_module,
            "photo_px_per_module_min": m.photo_px_per_module.0,
            "photo_px_per_module_max": m.photo_px_per_module.1,
            "read_rate": m.ours.rate(),
            "read_rate_bare": m.bare.rate(),
            "misreads": m.ours.misread,
            "p50_ms": m.ours.p(0.5),
            "p95_ms": m.ours.p(0.95),
            "read_rate_below_2_5_px": rate(m.by_size[0]),
            "read_rate_2_5_to_3_5_px": rate(m.by_size[1]),
            "read_rate_from_3_5_px": rate(m.by_size[2]),
        })
    };
    let figures = json!({
        "photos": PHOTOS,
        "v1_m": json(&v1),
        "v2_m": json(&v2),
        "v2_l": json(&v2_low),
        "v2_over_v1_p50_time": time_ratio,
    });
    println!("{figures}");
    Ok(())
}
