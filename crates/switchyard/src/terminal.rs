//! What logins draw in the terminal: a QR code of a URL, and a waiting line with the time left
//! redrawn in place (only on a terminal: piped output gets plain lines).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// Whether a progress line is on screen (so the next output starts on a fresh line).
static PROGRESS_SHOWN: AtomicBool = AtomicBool::new(false);

/// `url` as a QR code of Unicode half blocks (two modules per character cell), light on dark
/// so terminals with a dark background show it the way scanners expect; `None` when it does
/// not fit a QR code.
pub fn qr_code(url: &str) -> Option<String> {
    let code = QrCode::new(url.as_bytes()).ok()?;
    Some(code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build())
}

/// `14:05` for 14 minutes 5 seconds.
pub fn minutes_seconds(duration: Duration) -> String {
    let seconds = duration.as_secs();
    format!("{:02}:{:02}", seconds / 60, seconds % 60)
}

/// `what` and the time left until `deadline`, redrawn every second on stderr when it is a
/// terminal; runs until aborted.
pub async fn show_progress(what: String, deadline: Instant) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let left = deadline.saturating_duration_since(Instant::now());
        eprint!("\r{what} {} left ", minutes_seconds(left));
        PROGRESS_SHOWN.store(true, Ordering::Relaxed);
        let _ = std::io::stderr().flush();
    }
}

/// Ends the progress line, if one is shown.
pub fn end_progress() {
    if PROGRESS_SHOWN.swap(false, Ordering::Relaxed) {
        eprintln!();
    }
}

/// Ctrl-C, listened for from the moment this is made (so a Ctrl-C right after a login starts
/// is not lost to the default handler, which would kill the process mid-login).
pub struct Interrupt {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        #[cfg(unix)]
        {
            Interrupt { signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok() }
        }
        #[cfg(not(unix))]
        {
            Interrupt {}
        }
    }

    /// Resolves at the next Ctrl-C.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            signal.recv().await;
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_codes_are_half_block_text_with_a_quiet_zone() {
        let qr = qr_code("https://www.kimi.com/code/authorize-device?user_code=KM01-0007").unwrap();
        let lines: Vec<&str> = qr.lines().collect();
        assert!(lines.len() > 10, "{qr}");
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "every row is as wide");
        assert!(qr.chars().all(|c| matches!(c, ' ' | '\u{2580}' | '\u{2584}' | '\u{2588}' | '\n')));
        // Light on dark: the quiet zone is drawn as full blocks.
        assert!(lines[0].chars().all(|c| c == '\u{2588}' || c == '\u{2584}'), "{}", lines[0]);
        assert!(qr_code(&"x".repeat(8000)).is_none(), "too long for any QR version");
    }

    #[test]
    fn times_are_minutes_and_seconds() {
        assert_eq!(minutes_seconds(Duration::from_secs(900)), "15:00");
        assert_eq!(minutes_seconds(Duration::from_secs(65)), "01:05");
        assert_eq!(minutes_seconds(Duration::from_millis(999)), "00:00");
    }
}
