//! Event-time helpers.

/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// Formats nanoseconds since the Unix epoch as RFC 3339 / ISO-8601 UTC with nanoseconds,
/// e.g. `2024-01-31T12:00:00.000000001Z`.
pub fn iso8601(ts_ns: u64) -> String {
    Iso8601::of(ts_ns).as_str().to_owned()
}

/// An [`iso8601`] time formatted on the stack (every output record carries one).
#[derive(Clone, Copy)]
pub struct Iso8601([u8; 30]);

impl Iso8601 {
    /// Formats `ts_ns` (nanoseconds since the Unix epoch).
    pub fn of(ts_ns: u64) -> Iso8601 {
        Iso8601(iso8601_bytes(ts_ns))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for Iso8601 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Iso8601 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl serde::Serialize for Iso8601 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

fn iso8601_bytes(ts_ns: u64) -> [u8; 30] {
    let secs = ts_ns / NS_PER_SEC;
    let nanos = ts_ns % NS_PER_SEC;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    // Written digit by digit: this runs for every output record.
    let mut b = [0u8; 30];
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u64);
    put(5, 2, u64::from(m));
    put(8, 2, u64::from(d));
    put(11, 2, rem / 3600);
    put(14, 2, (rem / 60) % 60);
    put(17, 2, rem % 60);
    put(20, 9, nanos);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (29, b'Z'),
    ] {
        b[at] = c;
    }
    b
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month 1–12, day 1–31)
/// (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_iso8601_matches_formatting() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ts = x % (4_102_444_800 * NS_PER_SEC); // up to 2100
            let secs = ts / NS_PER_SEC;
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let rem = secs % 86_400;
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
                rem / 3600,
                (rem / 60) % 60,
                rem % 60,
                ts % NS_PER_SEC
            );
            assert_eq!(iso8601(ts), want);
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            iso8601(951_782_400 * NS_PER_SEC + 5),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            iso8601(1_700_000_000 * NS_PER_SEC),
            "2023-11-14T22:13:20.000000000Z"
        );
    }
}
