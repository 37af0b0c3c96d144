//! CAP geometry (§3.2.4): points as `lat,lon` in WGS 84, polygons as
//! whitespace-separated points, circles as `lat,lon radius_km`; and the two
//! tests villages are put to: point in polygon (boundary included) and
//! great-circle distance (haversine).
//!
//! Polygons are treated as planar in longitude/latitude, which is exact
//! enough for areas the size of a county; one crossing the antimeridian is
//! not supported (China is nowhere near it).

/// Most points one polygon may have.
pub const MAX_POINTS: usize = 10_000;
/// Mean Earth radius, km (the IUGG value haversine is usually run with).
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A WGS 84 position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Latitude, degrees north.
    pub lat: f64,
    /// Longitude, degrees east.
    pub lon: f64,
}

/// A closed polygon (the last point equals the first).
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon(Vec<Point>);

/// A circle on the Earth's surface.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Circle {
    /// Its centre.
    pub centre: Point,
    /// Its radius, km.
    pub radius_km: f64,
}

/// Why a point, polygon or circle was refused. Each message quotes the text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    /// Not `lat,lon` with numbers in range.
    #[error("`{0}` is not a point `latitude,longitude` (WGS 84 degrees)")]
    Point(String),
    /// Fewer than three distinct points.
    #[error("a polygon needs at least three distinct points, got {0}")]
    TooFewPoints(usize),
    /// More than [`MAX_POINTS`] points.
    #[error("a polygon may have at most {MAX_POINTS} points, got {0}")]
    TooManyPoints(usize),
    /// Not `lat,lon radius`.
    #[error("`{0}` is not a circle `latitude,longitude radius_km`")]
    Circle(String),
}

/// Parses `lat,lon`.
pub fn parse_point(text: &str) -> Result<Point, GeoError> {
    let bad = || GeoError::Point(text.chars().take(60).collect());
    let (lat, lon) = text.trim().split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    let lon: f64 = lon.trim().parse().map_err(|_| bad())?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(bad());
    }
    Ok(Point { lat, lon })
}

/// Parses a CAP polygon. An empty element means no polygon (`None`), as
/// some real-world alerts send one. CAP asks for the last point to repeat
/// the first; a polygon that forgets is closed here rather than refused.
pub fn parse_polygon(text: &str) -> Result<Option<Polygon>, GeoError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Ok(None);
    }
    if words.len() > MAX_POINTS {
        return Err(GeoError::TooManyPoints(words.len()));
    }
    let mut points = words.into_iter().map(parse_point).collect::<Result<Vec<_>, _>>()?;
    let mut distinct = points.clone();
    distinct.sort_by(|a, b| a.lat.total_cmp(&b.lat).then(a.lon.total_cmp(&b.lon)));
    distinct.dedup();
    if distinct.len() < 3 {
        return Err(GeoError::TooFewPoints(distinct.len()));
    }
    if points.first() != points.last() {
        points.push(points[0]);
    }
    Ok(Some(Polygon(points)))
}

/// Parses a CAP circle `lat,lon radius_km`.
pub fn parse_circle(text: &str) -> Result<Circle, GeoError> {
    let bad = || GeoError::Circle(text.chars().take(60).collect());
    let mut words = text.split_whitespace();
    let (Some(centre), Some(radius), None) = (words.next(), words.next(), words.next()) else {
        return Err(bad());
    };
    let centre = parse_point(centre).map_err(|_| bad())?;
    let radius_km: f64 = radius.parse().map_err(|_| bad())?;
    // Half the Earth's circumference covers every point already.
    if !(0.0..=20_100.0).contains(&radius_km) {
        return Err(bad());
    }
    Ok(Circle { centre, radius_km })
}

impl Polygon {
    /// Whether `p` is inside or on the boundary.
    pub fn contains(&self, p: Point) -> bool {
        let pts = &self.0;
        if pts.windows(2).any(|e| on_segment(p, e[0], e[1])) {
            return true;
        }
        // Even-odd rule: count edges crossed by a ray from `p` towards +lon.
        let mut inside = false;
        for e in pts.windows(2) {
            let (a, b) = (e[0], e[1]);
            if (a.lat > p.lat) != (b.lat > p.lat) {
                let lon_at = a.lon + (p.lat - a.lat) / (b.lat - a.lat) * (b.lon - a.lon);
                if p.lon < lon_at {
                    inside = !inside;
                }
            }
        }
        inside
    }
}

impl Circle {
    /// Whether `p` is within the radius (the edge included).
    pub fn contains(&self, p: Point) -> bool {
        // A millimetre of slack, so a point exactly on the edge is not lost
        // to rounding.
        haversine_km(self.centre, p) <= self.radius_km + 1e-6
    }
}

/// Great-circle distance between two points, km.
pub fn haversine_km(a: Point, b: Point) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = (b.lat - a.lat).to_radians();
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Whether `p` lies on the segment `a`–`b` (within rounding).
fn on_segment(p: Point, a: Point, b: Point) -> bool {
    const EPS: f64 = 1e-9;
    let cross = (b.lon - a.lon) * (p.lat - a.lat) - (b.lat - a.lat) * (p.lon - a.lon);
    cross.abs() <= EPS
        && p.lon >= a.lon.min(b.lon) - EPS
        && p.lon <= a.lon.max(b.lon) + EPS
        && p.lat >= a.lat.min(b.lat) - EPS
        && p.lat <= a.lat.max(b.lat) + EPS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(lat: f64, lon: f64) -> Point {
        Point { lat, lon }
    }

    fn square() -> Polygon {
        parse_polygon("35.0,107.0 35.0,108.0 36.0,108.0 36.0,107.0 35.0,107.0").expect("valid").expect("present")
    }

    #[test]
    fn point_in_polygon_cases() {
        let sq = square();
        let check = |p: Point, expected: bool, what: &str| assert_eq!(sq.contains(p), expected, "{what}");
        check(pt(35.5, 107.5), true, "centre");
        check(pt(35.0, 107.0), true, "a vertex");
        check(pt(35.0, 107.5), true, "on the southern edge");
        check(pt(35.5, 108.0), true, "on the eastern edge");
        check(pt(34.999, 107.5), false, "just south");
        check(pt(35.5, 108.001), false, "just east");
        check(pt(35.0, 106.0), false, "in line with an edge, outside");
        check(pt(36.0, 109.0), false, "in line with a vertex, outside");
        // A concave polygon (a U): the notch is outside.
        let u = parse_polygon("0,0 0,3 3,3 3,2 1,2 1,1 3,1 3,0").expect("valid").expect("present");
        assert!(u.contains(pt(0.5, 1.5)), "the base of the U");
        assert!(!u.contains(pt(1.5, 1.5)), "inside the notch");
        assert!(u.contains(pt(2.5, 2.5)), "an arm");
    }

    #[test]
    fn polygons_are_parsed_leniently_but_bounded() {
        assert_eq!(parse_polygon("  \n ").expect("empty"), None);
        let open = parse_polygon("0,0 0,1 1,1").expect("closed for the sender").expect("present");
        assert_eq!(open.0.first(), open.0.last());
        assert_eq!(parse_polygon("0,0 0,1 0,0 0,1"), Err(GeoError::TooFewPoints(2)));
        assert!(matches!(parse_polygon("0,0 0,x 1,1 0,0"), Err(GeoError::Point(_))));
        assert!(matches!(parse_polygon("91,0 0,1 1,1 91,0"), Err(GeoError::Point(_))));
        assert!(matches!(parse_polygon("NaN,0 0,1 1,1 NaN,0"), Err(GeoError::Point(_))));
        let many = vec!["1,1"; MAX_POINTS + 1].join(" ");
        assert_eq!(parse_polygon(&many), Err(GeoError::TooManyPoints(MAX_POINTS + 1)));
    }

    #[test]
    fn circles_by_great_circle_distance() {
        // One degree of latitude is about 111.2 km anywhere.
        let km_per_degree = EARTH_RADIUS_KM.to_radians();
        assert!((haversine_km(pt(35.0, 107.0), pt(36.0, 107.0)) - km_per_degree).abs() < 1e-9);
        assert!((km_per_degree - 111.195).abs() < 0.001);
        let c = parse_circle("35.0,107.0 10").expect("valid");
        assert!(c.contains(pt(35.0, 107.0)), "the centre");
        assert!(c.contains(pt(35.0 + 10.0 / km_per_degree, 107.0)), "on the edge");
        assert!(!c.contains(pt(35.0 + 10.01 / km_per_degree, 107.0)), "just outside");
        // East-west degrees shrink with latitude: 0.1° of longitude at 35° N is ~9.1 km.
        assert!(c.contains(pt(35.0, 107.1)));
        assert!(!parse_circle("35.0,107.0 9").expect("valid").contains(pt(35.0, 107.1)));
        let zero = parse_circle("35.0,107.0 0").expect("a zero radius is a point");
        assert!(zero.contains(pt(35.0, 107.0)) && !zero.contains(pt(35.0001, 107.0)));
        for bad in ["35.0,107.0", "35.0,107.0 -1", "35.0,107.0 1 2", "x 1", "35.0,107.0 inf"] {
            assert!(matches!(parse_circle(bad), Err(GeoError::Circle(_))), "{bad}");
        }
    }
}
