//! HTTP/1.1 request and response heads (RFC 9112).

use crate::synth::rng::Rng;
use flowtide_dataflows::time::civil_from_days;
use std::fmt::Write as _;

const AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/119.0",
    "curl/8.4.0",
    "Debian APT-HTTP/1.3 (2.6.1)",
];
const DIRS: [&str; 8] = [
    "static", "assets", "api/v2", "img", "js", "css", "media", "download",
];
const EXTS: [&str; 6] = ["js", "css", "png", "json", "bin", "html"];
const SERVERS: [&str; 4] = ["nginx", "Apache", "cloudflare", "envoy"];

/// A request head for `host`; `body` > 0 makes it a POST with that Content-Length.
pub fn request(rng: &mut Rng, host: &str, body: u64) -> Vec<u8> {
    let mut s = String::with_capacity(400);
    let method = if body > 0 { "POST" } else { "GET" };
    let _ = write!(
        s,
        "{method} /{}/{:x}.{} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.9\r\n",
        rng.pick(&DIRS),
        rng.next_u64() >> rng.below(40),
        rng.pick(&EXTS),
        rng.pick(&AGENTS),
    );
    if rng.chance(0.4) {
        let _ = write!(
            s,
            "Cookie: session={:016x}{:08x}\r\n",
            rng.next_u64(),
            rng.next_u32()
        );
    }
    if body > 0 {
        let _ = write!(
            s,
            "Content-Type: application/octet-stream\r\nContent-Length: {body}\r\n"
        );
    }
    s.push_str("Connection: keep-alive\r\n\r\n");
    s.into_bytes()
}

/// A response head with status `status` and a body of `body` bytes, dated `unix_secs`.
pub fn response(rng: &mut Rng, status: u16, body: u64, unix_secs: u64) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        404 => "Not Found",
        _ => "OK",
    };
    let mut s = String::with_capacity(300);
    let _ = write!(
        s,
        "HTTP/1.1 {status} {reason}\r\nDate: {}\r\nServer: {}\r\n",
        http_date(unix_secs),
        rng.pick(&SERVERS)
    );
    if status == 200 || status == 404 {
        let _ = write!(
            s,
            "Content-Type: application/octet-stream\r\nContent-Length: {body}\r\n"
        );
    }
    if rng.chance(0.5) {
        let _ = write!(
            s,
            "ETag: \"{:x}\"\r\nCache-Control: max-age={}\r\n",
            rng.next_u64(),
            60 * rng.range(1, 1440)
        );
    }
    s.push_str("Connection: keep-alive\r\n\r\n");
    s.into_bytes()
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn heads_end_with_blank_line() {
        let mut rng = Rng::new(5);
        let r = request(&mut rng, "a.example", 10);
        assert!(r.ends_with(b"\r\n\r\n"));
        assert!(std::str::from_utf8(&r)
            .unwrap_or("")
            .contains("Content-Length: 10\r\n"));
        let s = response(&mut rng, 200, 1234, 1_700_000_000);
        assert!(s.starts_with(b"HTTP/1.1 200 OK\r\n") && s.ends_with(b"\r\n\r\n"));
    }
}
