//! The camera path: frames → decode region → QR reader → debounce → scans.
//!
//! Frames come from a live camera (nokhwa, V4L2; the `camera` cargo feature) or
//! from image files played at the profile's frame rate — the same pipeline, so
//! tests and field checks with recorded frames exercise exactly what runs at the
//! door. A code held in front of the camera is one scan: the same text seen again
//! within the profile's debounce time is dropped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use firmware_config::CameraProfile;
use schema::entry::Direction;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::daemon::Input;
use crate::qr::{LumaFrame, QrError, QrReader};

/// Where frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameOrigin {
    /// A V4L2 camera by index (needs the `camera` feature).
    Device(u32),
    /// PNG/JPEG files, in name order (a file, or every image in a folder).
    Files(PathBuf),
}

/// Drops repeats of the code just seen.
#[derive(Debug)]
pub struct Debounce {
    window: Duration,
    last: Option<(String, Instant)>,
}

impl Debounce {
    /// Repeats within `window` are dropped.
    pub fn new(window: Duration) -> Self {
        Self { window, last: None }
    }

    /// Whether `text` seen at `now` is a new presentation. Every sighting of the
    /// same code extends the window, so a phone held still is one scan.
    pub fn admit(&mut self, text: &str, now: Instant) -> bool {
        let repeat = self
            .last
            .as_ref()
            .is_some_and(|(last, at)| last == text && now.saturating_duration_since(*at) < self.window);
        self.last = Some((text.to_owned(), now));
        !repeat
    }
}

/// The part of the frame the profile says to search, as fractions `[x, y, w, h]`.
pub fn crop(frame: &LumaFrame, region: Option<[f32; 4]>) -> LumaFrame {
    let Some([x, y, w, h]) = region else {
        return frame.clone();
    };
    let (fw, fh) = (frame.width as f32, frame.height as f32);
    let x0 = ((x * fw) as u32).min(frame.width - 1);
    let y0 = ((y * fh) as u32).min(frame.height - 1);
    let cw = ((w * fw) as u32).clamp(1, frame.width - x0);
    let ch = ((h * fh) as u32).clamp(1, frame.height - y0);
    let mut pixels = Vec::with_capacity((cw * ch) as usize);
    for row in y0..y0 + ch {
        let start = (row * frame.width + x0) as usize;
        pixels.extend_from_slice(frame.pixels.get(start..start + cw as usize).unwrap_or_default());
    }
    LumaFrame::new(pixels, cw, ch).unwrap_or_else(|_| frame.clone())
}

/// Image files of a folder (or the single file), sorted by name.
pub fn image_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "png" | "jpg" | "jpeg")))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs the camera path until `shutdown` (a file source ends after its last
/// frame). Blocking: run it on its own thread.
pub fn run(
    origin: &FrameOrigin,
    profile: &CameraProfile,
    direction: Direction,
    tx: &mpsc::Sender<Input>,
    shutdown: &CancellationToken,
) {
    let reader = QrReader::default();
    let mut debounce = Debounce::new(Duration::from_millis(u64::from(profile.debounce_ms)));
    let mut handle = |frame: &LumaFrame| -> bool {
        match reader.decode(&crop(frame, profile.decode_region)) {
            Ok(text) if debounce.admit(&text, Instant::now()) => {
                tx.blocking_send(Input::Scan { text, direction }).is_ok()
            }
            Ok(_) | Err(QrError::NotFound) => true,
            Err(e) => {
                eprintln!("gate-agent: camera frame skipped: {e}");
                true
            }
        }
    };
    match origin {
        FrameOrigin::Files(path) => play_files(path, profile, shutdown, &mut handle),
        FrameOrigin::Device(index) => live::run(*index, profile, shutdown, &mut handle),
    }
}

fn play_files(
    path: &Path,
    profile: &CameraProfile,
    shutdown: &CancellationToken,
    handle: &mut dyn FnMut(&LumaFrame) -> bool,
) {
    let interval = Duration::from_secs(1) / profile.fps.max(1);
    let files = match image_files(path) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("gate-agent: camera frames {}: {e}", path.display());
            return;
        }
    };
    for file in files {
        if shutdown.is_cancelled() {
            return;
        }
        match LumaFrame::load(&file) {
            Ok(frame) if !handle(&frame) => return,
            Ok(_) => {}
            Err(e) => eprintln!("gate-agent: camera frame {}: {e}", file.display()),
        }
        std::thread::sleep(interval);
    }
}

#[cfg(feature = "camera")]
mod live {
    //! Live capture with nokhwa (V4L2 on Linux).

    use nokhwa::Camera;
    use nokhwa::pixel_format::LumaFormat;
    use nokhwa::utils::{CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution};

    use super::*;

    /// Captures until shutdown; a missing or failing camera is reported and retried.
    pub fn run(
        index: u32,
        profile: &CameraProfile,
        shutdown: &CancellationToken,
        handle: &mut dyn FnMut(&LumaFrame) -> bool,
    ) {
        while !shutdown.is_cancelled() {
            let mut camera = match open(index, profile) {
                Ok(camera) => camera,
                Err(e) => {
                    eprintln!("gate-agent: no camera at index {index}: {e}; retrying in 5 s");
                    std::thread::sleep(Duration::from_secs(5));
                    continue;
                }
            };
            while !shutdown.is_cancelled() {
                let frame = camera.frame().map_err(|e| e.to_string()).and_then(|buffer| {
                    let image = buffer.decode_image::<LumaFormat>().map_err(|e| e.to_string())?;
                    let (width, height) = (image.width(), image.height());
                    LumaFrame::new(image.into_raw(), width, height).map_err(|e| e.to_string())
                });
                match frame {
                    Ok(frame) if !handle(&frame) => return,
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("gate-agent: camera {index}: {e}; reopening");
                        break;
                    }
                }
            }
            let _ = camera.stop_stream();
        }
    }

    pub(super) fn open(index: u32, p: &CameraProfile) -> Result<Camera, nokhwa::NokhwaError> {
        let wanted = CameraFormat::new(Resolution::new(p.width, p.height), FrameFormat::MJPEG, p.fps);
        let format = RequestedFormat::new::<LumaFormat>(RequestedFormatType::Closest(wanted));
        let mut camera = Camera::new(CameraIndex::Index(index), format)?;
        camera.open_stream()?;
        Ok(camera)
    }
}

#[cfg(not(feature = "camera"))]
mod live {
    //! Built without the `camera` feature: no live capture.

    use super::*;

    /// Reports once that live capture is not built in.
    pub fn run(index: u32, _: &CameraProfile, _: &CancellationToken, _: &mut dyn FnMut(&LumaFrame) -> bool) {
        eprintln!("gate-agent: camera {index}: this build has no live capture (build with --features camera)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_held_still_is_one_scan() {
        let mut d = Debounce::new(Duration::from_secs(2));
        let t0 = Instant::now();
        assert!(d.admit("A", t0));
        assert!(!d.admit("A", t0 + Duration::from_millis(500)));
        assert!(!d.admit("A", t0 + Duration::from_millis(2_400)), "each sighting extends the window");
        assert!(d.admit("B", t0 + Duration::from_millis(2_500)));
        assert!(d.admit("A", t0 + Duration::from_millis(2_600)), "another code in between ends the repeat");
        assert!(d.admit("A", t0 + Duration::from_secs(10)));
    }

    #[cfg(feature = "camera")]
    #[test]
    fn a_missing_camera_is_a_clear_error_not_a_panic() {
        let Some(Ok(firmware_config::Profile::Camera(profile))) = firmware_config::built_in("uvc-camera-vga") else {
            panic!("built-in camera profile");
        };
        // Index 63: no such /dev/video device on a build or CI machine.
        let err = live::open(63, &profile).err().expect("no camera 63");
        assert!(!err.to_string().is_empty());
        let devices = nokhwa::query(nokhwa::utils::ApiBackend::Auto).map(|d| d.len());
        println!("V4L2 cameras here: {devices:?}; opening index 63: {err}");
    }

    #[test]
    fn crop_takes_the_region_and_stays_inside_the_frame() {
        let frame = LumaFrame::new((0..100u32).map(|i| i as u8).collect(), 10, 10).expect("frame");
        let c = crop(&frame, Some([0.2, 0.3, 0.5, 0.4]));
        assert_eq!((c.width, c.height), (5, 4));
        assert_eq!(c.pixels.first(), Some(&32));
        let edge = crop(&frame, Some([0.9, 0.9, 0.1, 0.1]));
        assert_eq!((edge.width, edge.height, edge.pixels.first()), (1, 1, Some(&99)));
        assert_eq!(crop(&frame, None), frame);
    }
}
