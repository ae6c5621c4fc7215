//! `tixgate-bench qr`: the camera path against one bare rxing pass on the same frames.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Context;
use gate_agent::qr::{LumaFrame, QrReader};
use rxing::common::HybridBinarizer;
use rxing::{BarcodeFormat, BinaryBitmap, DecodeHints, Luma8Source, MultiFormatReader, Reader};
use serde_json::json;
use tixgate_tests::qr_sets::{degraded_set, photo_cases, photo_dir, place_in_frame};

/// Repetitions per image; the minimum is kept, which filters out other tenants' noise.
const REPEAT: usize = 3;

/// One decoder run over one frame: its result and the best of `REPEAT` times.
pub(crate) struct Timed {
    pub(crate) text: Option<String>,
    pub(crate) ms: f64,
}

pub(crate) fn time_best(mut f: impl FnMut() -> Option<String>) -> Timed {
    let mut best = f64::INFINITY;
    let mut text = None;
    for _ in 0..REPEAT {
        let start = Instant::now();
        text = f();
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
    }
    Timed { text, ms: best }
}

/// The reference: what rxing does in one pass (hybrid binariser, QR only, try harder).
pub(crate) fn bare_rxing(frame: &LumaFrame) -> Option<String> {
    let hints = DecodeHints {
        PossibleFormats: Some(HashSet::from([BarcodeFormat::QR_CODE])),
        TryHarder: Some(true),
        ..DecodeHints::default()
    };
    let source = Luma8Source::new_with_slice(&frame.pixels, frame.width, frame.height).ok()?;
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
    MultiFormatReader::default().decode_with_hints(&mut bitmap, &hints).ok().map(|r| r.getText().to_owned())
}

/// Rate, misreads and times of one decoder over (frame, expected) pairs.
pub(crate) struct Tally {
    pub(crate) read: usize,
    pub(crate) misread: usize,
    pub(crate) total: usize,
    /// Whether each frame, in order, was read correctly.
    pub(crate) each: Vec<bool>,
    times: Vec<f64>,
}

impl Tally {
    pub(crate) fn over<'a>(
        cases: impl Iterator<Item = (&'a LumaFrame, &'a str)>,
        decode: impl Fn(&LumaFrame) -> Option<String>,
    ) -> Self {
        let mut t = Tally { read: 0, misread: 0, total: 0, each: Vec::new(), times: Vec::new() };
        for (frame, expected) in cases {
            let run = time_best(|| decode(frame));
            t.total += 1;
            t.times.push(run.ms);
            t.each.push(run.text.as_deref() == Some(expected));
            match run.text {
                Some(text) if text == expected => t.read += 1,
                Some(_) => t.misread += 1,
                None => {}
            }
        }
        t.times.sort_by(f64::total_cmp);
        t
    }

    pub(crate) fn rate(&self) -> f64 {
        self.read as f64 / self.total.max(1) as f64
    }

    pub(crate) fn p(&self, p: f64) -> f64 {
        crate::percentile(&self.times, p)
    }
}

/// Runs the QR benchmark and prints its figures and JSON line.
pub fn run() -> anyhow::Result<()> {
    let figures = measure()?;
    println!("{figures}");
    Ok(())
}

/// Measures and prints the readable figures; returns them as JSON.
pub fn measure() -> anyhow::Result<serde_json::Value> {
    let reader = QrReader::default();
    let ours = |f: &LumaFrame| reader.decode(f).ok();

    let dir = photo_dir();
    let photos = photo_cases(&dir).map_err(anyhow::Error::msg)?;
    let frames = photos
        .iter()
        .map(|c| LumaFrame::load(&c.path).with_context(|| c.path.display().to_string()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pairs = || frames.iter().zip(photos.iter().map(|c| c.expected.as_str()));
    let vga = || pairs().filter(|(f, _)| (f.width, f.height) == (640, 480));
    let (ours_all, bare_all) = (Tally::over(pairs(), ours), Tally::over(pairs(), bare_rxing));
    let (ours_vga, bare_vga) = (Tally::over(vga(), ours), Tally::over(vga(), bare_rxing));
    println!("real photos ({} images, {}):", ours_all.total, dir.display());
    println!(
        "  ours: {}/{} read ({:.1}%), {} misread, p50 {:.3} ms, p95 {:.3} ms",
        ours_all.read,
        ours_all.total,
        ours_all.rate() * 100.0,
        ours_all.misread,
        ours_all.p(0.5),
        ours_all.p(0.95)
    );
    println!(
        "  bare rxing pass: {}/{} read ({:.1}%), {} misread, p50 {:.3} ms, p95 {:.3} ms",
        bare_all.read,
        bare_all.total,
        bare_all.rate() * 100.0,
        bare_all.misread,
        bare_all.p(0.5),
        bare_all.p(0.95)
    );
    println!(
        "  640x480 photos ({}): ours p50 {:.3} ms, bare p50 {:.3} ms",
        ours_vga.total,
        ours_vga.p(0.5),
        bare_vga.p(0.5)
    );

    let synth = degraded_set(200, 20_261_125);
    let synth_pairs = || synth.iter().map(|c| (&c.frame, c.code.as_str()));
    let (ours_syn, bare_syn) = (Tally::over(synth_pairs(), ours), Tally::over(synth_pairs(), bare_rxing));
    println!(
        "synthetic degraded tickets: ours {}/{} ({:.1}%), {} misread, p50 {:.3} ms; bare rxing {:.1}%",
        ours_syn.read,
        ours_syn.total,
        ours_syn.rate() * 100.0,
        ours_syn.misread,
        ours_syn.p(0.5),
        bare_syn.rate() * 100.0
    );

    let code = synth.first().context("synthetic set is empty")?;
    let hd = place_in_frame(&code.code, 1280, 720, 3, 7);
    let hd_run = time_best(|| ours(&hd));
    anyhow::ensure!(hd_run.text.as_deref() == Some(code.code.as_str()), "1280x720 frame not read");
    let empty = place_in_frame("", 1280, 720, 3, 7);
    let empty_run = time_best(|| ours(&empty));
    println!(
        "1280x720 frame with a ticket at 3 px/module: {:.2} ms; with no code (every fallback runs): {:.2} ms",
        hd_run.ms, empty_run.ms
    );

    let ratio = ours_vga.p(0.5) / bare_vga.p(0.5);
    println!("ratio ours/bare at 640x480 p50: {ratio:.2}");
    Ok(json!({
        "decode_rate": ours_all.rate(),
        "decode_rate_bare": bare_all.rate(),
        "photo_misreads": ours_all.misread,
        "photo_p50_ms": ours_all.p(0.5),
        "photo_p95_ms": ours_all.p(0.95),
        "vga_p50_ms": ours_vga.p(0.5),
        "bare_vga_p50_ms": bare_vga.p(0.5),
        "vga_ratio": ratio,
        "synthetic_rate": ours_syn.rate(),
        "synthetic_rate_bare": bare_syn.rate(),
        "synthetic_misreads": ours_syn.misread,
        "frame_1280x720_ms": hd_run.ms,
        "empty_frame_1280x720_ms": empty_run.ms,
    }))
}
