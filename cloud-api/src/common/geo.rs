//! "Events near a point": a circle on the map turned into what the store can
//! test with integer arithmetic on indexed columns (coordinates in millionths
//! of a degree). The bounding box uses the coordinate index; inside it, the
//! equirectangular distance (longitude scaled by the cosine of the centre's
//! latitude) decides. Under 500 km and away from the poles it is within 1% of
//! the great-circle distance (tested against haversine here). Circles that
//! would cross the antimeridian are cut at it.

/// Kilometres per degree of latitude (mean Earth radius 6371.0 km).
pub const KM_PER_DEGREE: f64 = 6371.0 * std::f64::consts::PI / 180.0;
/// Largest radius accepted, km.
pub const MAX_RADIUS_KM: f64 = 20_000.0;

/// What is wrong with a circle.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum CircleError {
    /// Latitude outside -90..=90 or longitude outside -180..=180.
    #[error("a latitude from -90 to 90 and a longitude from -180 to 180")]
    OutOfRange,
    /// Radius not in (0, 20000] km.
    #[error("within_km above 0, at most {MAX_RADIUS_KM}")]
    BadRadius,
}

/// A centre and a radius.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Circle {
    lat: f64,
    lon: f64,
    km: f64,
}

/// A circle as store parameters, all in millionths of a degree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Bounding box.
    pub min_lat_e6: i64,
    /// Bounding box.
    pub max_lat_e6: i64,
    /// Bounding box.
    pub min_lon_e6: i64,
    /// Bounding box.
    pub max_lon_e6: i64,
    /// Centre.
    pub lat_e6: i64,
    /// Centre.
    pub lon_e6: i64,
    /// cos(centre latitude) × 10⁶: scales longitude differences to latitude's.
    pub lon_scale_e6: i64,
    /// The radius in millionths of a degree of latitude, squared.
    pub radius2_e12: i64,
}

impl Circle {
    /// Checks a centre and radius from a client.
    pub fn new(lat: f64, lon: f64, km: f64) -> Result<Self, CircleError> {
        if !(lat.is_finite() && lon.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
            return Err(CircleError::OutOfRange);
        }
        if !(km.is_finite() && km > 0.0 && km <= MAX_RADIUS_KM) {
            return Err(CircleError::BadRadius);
        }
        Ok(Self { lat, lon, km })
    }

    /// The store's parameters.
    pub fn bounds(&self) -> Bounds {
        let e6 = |deg: f64| (deg * 1e6).round() as i64;
        let radius_deg = self.km / KM_PER_DEGREE;
        let cos = self.lat.to_radians().cos();
        // Near a pole one degree of longitude is almost nothing: take them all.
        let lon_span = if cos * 180.0 > radius_deg { radius_deg / cos } else { 180.0 };
        Bounds {
            min_lat_e6: e6((self.lat - radius_deg).max(-90.0)),
            max_lat_e6: e6((self.lat + radius_deg).min(90.0)),
            min_lon_e6: e6((self.lon - lon_span).max(-180.0)),
            max_lon_e6: e6((self.lon + lon_span).min(180.0)),
            lat_e6: e6(self.lat),
            lon_e6: e6(self.lon),
            lon_scale_e6: e6(cos),
            radius2_e12: e6(radius_deg).saturating_mul(e6(radius_deg)),
        }
    }
}

impl Bounds {
    /// Whether a point (millionths of a degree) is inside, exactly as the store computes it.
    pub fn contains(&self, lat_e6: i64, lon_e6: i64) -> bool {
        let in_box = (self.min_lat_e6..=self.max_lat_e6).contains(&lat_e6)
            && (self.min_lon_e6..=self.max_lon_e6).contains(&lon_e6);
        let dx = (lon_e6 - self.lon_e6) * self.lon_scale_e6 / 1_000_000;
        let dy = lat_e6 - self.lat_e6;
        in_box && dx * dx + dy * dy <= self.radius2_e12
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
        let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
        let (dla, dlo) = ((b.0 - a.0).to_radians(), (b.1 - a.1).to_radians());
        let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
        2.0 * 6371.0 * h.sqrt().asin()
    }

    const BERLIN: (f64, f64) = (52.520_008, 13.404_954);
    const POTSDAM: (f64, f64) = (52.390_569, 13.064_473); // 27.2 km
    const HAMBURG: (f64, f64) = (53.551_086, 9.993_682); // 255 km

    fn e6(p: (f64, f64)) -> (i64, i64) {
        ((p.0 * 1e6).round() as i64, (p.1 * 1e6).round() as i64)
    }

    #[test]
    fn the_edge_falls_within_one_percent_of_the_great_circle_distance() {
        for (place, name) in [(POTSDAM, "Potsdam"), (HAMBURG, "Hamburg")] {
            let km = haversine_km(BERLIN, place);
            let (lat, lon) = e6(place);
            let inside = Circle::new(BERLIN.0, BERLIN.1, km * 1.01).unwrap().bounds();
            assert!(inside.contains(lat, lon), "{name} at {km:.1} km is within {:.1}", km * 1.01);
            let outside = Circle::new(BERLIN.0, BERLIN.1, km * 0.99).unwrap().bounds();
            assert!(!outside.contains(lat, lon), "{name} at {km:.1} km is beyond {:.1}", km * 0.99);
        }
    }

    #[test]
    fn near_a_pole_every_longitude_is_in_the_box() {
        let b = Circle::new(89.9, 0.0, 50.0).unwrap().bounds();
        assert_eq!((b.min_lon_e6, b.max_lon_e6), (-180_000_000, 180_000_000));
        assert!(b.contains(89_950_000, 179_000_000), "just across the pole");
    }

    #[test]
    fn bad_circles_are_refused() {
        assert_eq!(Circle::new(91.0, 0.0, 1.0), Err(CircleError::OutOfRange));
        assert_eq!(Circle::new(0.0, f64::NAN, 1.0), Err(CircleError::OutOfRange));
        assert_eq!(Circle::new(0.0, 0.0, 0.0), Err(CircleError::BadRadius));
        assert_eq!(Circle::new(0.0, 0.0, 20_001.0), Err(CircleError::BadRadius));
        let widest = Circle::new(0.0, 0.0, MAX_RADIUS_KM).unwrap().bounds();
        assert!(widest.contains(-60_000_000, 100_000_000), "most of the Earth, no overflow");
        assert!(
            !widest.contains(-89_000_000, 179_000_000),
            "the far side is farther than 20,000 km on this projection"
        );
    }
}
