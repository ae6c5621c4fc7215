//! The handheld display: what door staff read at arm's length.
//!
//! The whole terminal turns green (ACCEPT) or red (REJECT); below the headline
//! come the reason in words, ticket type, seat, holder, and for a ticket already
//! used, when and where it entered; the bottom line counts the session. The
//! layout ([`Screen::lines`]) is pure and tested; [`draw`] paints it with
//! crossterm.

use std::io::Write;

use crossterm::style::{Color, Print, ResetColor, SetBackgroundColor, SetForegroundColor};
use crossterm::terminal::{Clear, ClearType};
use crossterm::{cursor, queue};

use crate::gate::ScanResult;

/// What the screen shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screen {
    accepted: u64,
    rejected: u64,
    last: Option<Shown>,
    /// `None`: no hub configured; otherwise whether it answers.
    hub: Option<bool>,
    /// A ticket list downloading from the hub: percent done.
    download: Option<u64>,
    /// Entrances door staff may choose from (the gate has none yet).
    choices: Vec<String>,
    /// The entrance the gate works.
    entrance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    verdict: Verdict,
    lines: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    Reject,
    Annulled,
}

impl Screen {
    /// Shows a decision.
    pub fn show(&mut self, result: &ScanResult) {
        let display = &result.outcome.display;
        let accepted = result.line.reason.is_none();
        let mut lines = Vec::new();
        if let Some(reason) = result.line.reason {
            lines.push(reason.words().to_owned());
        }
        lines.extend(display.go_to_words());
        lines.extend(display.type_name.clone());
        if let Some(seat) = &display.seat {
            lines.push(format!("Seat {}", seat.as_str()));
        }
        lines.extend(display.holder.clone());
        if let Some((at, gate)) = &display.first_entry {
            lines.push(format!("Entered {} at {gate}", ago(result.record.wall_ms.saturating_sub(at.millis()))));
        }
        if result.outcome.not_in_replica {
            lines.push("(not on this gate's list: check later)".to_owned());
        }
        if accepted {
            self.accepted += 1;
        } else {
            self.rejected += 1;
        }
        let verdict = if accepted { Verdict::Accept } else { Verdict::Reject };
        self.last = Some(Shown { verdict, lines });
    }

    /// Shows that the last admission was withdrawn (nobody passed).
    pub fn annulled(&mut self) {
        self.accepted = self.accepted.saturating_sub(1);
        self.last = Some(Shown {
            verdict: Verdict::Annulled,
            lines: vec!["Nobody passed: entry withdrawn".into(), "Scan again".into()],
        });
    }

    /// The gate has no entrance yet: staff choose one of `names` by number.
    pub fn choose_entrance(&mut self, names: Vec<String>) {
        self.choices = names;
    }

    /// The gate works entrance `name` (`None`: a pinned list).
    pub fn entrance(&mut self, name: Option<String>) {
        self.choices.clear();
        self.entrance = name;
    }

    /// The hub link came up or went down (staff should know the gate decides alone).
    pub fn hub_link(&mut self, online: bool) {
        self.hub = Some(online);
    }

    /// A ticket list is downloading: `received` of `total` bytes.
    pub fn replica_download(&mut self, received: u64, total: u64) {
        self.download = (received < total).then(|| (received * 100).checked_div(total).unwrap_or(0));
    }

    /// Background colour of the whole screen.
    pub fn color(&self) -> Color {
        if !self.choices.is_empty() {
            return Color::DarkBlue;
        }
        match self.last.as_ref().map(|s| s.verdict) {
            Some(Verdict::Accept) => Color::DarkGreen,
            Some(Verdict::Reject) => Color::DarkRed,
            Some(Verdict::Annulled) => Color::DarkYellow,
            None => Color::Black,
        }
    }

    /// The text, one entry per terminal row, each centred in `width` columns.
    pub fn lines(&self, width: u16, height: u16) -> Vec<String> {
        let headline = match self.last.as_ref().map(|s| s.verdict) {
            Some(Verdict::Accept) => "A C C E P T",
            Some(Verdict::Reject) => "R E J E C T",
            Some(Verdict::Annulled) => "A N N U L L E D",
            None => "R E A D Y",
        };
        let mut body = vec![String::new(), headline.to_owned(), String::new()];
        body.extend(self.last.iter().flat_map(|s| s.lines.iter().cloned()));
        if !self.choices.is_empty() {
            body = vec!["W H I C H   E N T R A N C E ?".to_owned(), String::new()];
            body.extend(self.choices.iter().enumerate().map(|(i, name)| format!("{}  {name}", i + 1)));
            body.extend([String::new(), "Type its number and press Enter".to_owned()]);
        }
        let link = match self.hub {
            None => "",
            Some(true) => "   hub: online",
            Some(false) => "   hub: OFFLINE (deciding alone)",
        };
        let download = match self.download {
            // A bar of ten cells: staff see the list is updating, not stuck.
            Some(percent) => {
                let done = usize::try_from(percent / 10).unwrap_or(10).min(10);
                format!("   tickets [{}{}] {percent}%", "#".repeat(done), "-".repeat(10 - done))
            }
            None => String::new(),
        };
        let at = self.entrance.as_ref().map(|name| format!("{name} entrance   ")).unwrap_or_default();
        let footer = format!("{at}in {}   refused {}{link}{download}", self.accepted, self.rejected);
        let rows = usize::from(height.max(1));
        let top = rows.saturating_sub(body.len() + 1) / 2;
        let mut out: Vec<String> = std::iter::repeat_n(String::new(), top).chain(body).collect();
        out.truncate(rows.saturating_sub(1));
        out.resize(rows.saturating_sub(1), String::new());
        out.push(footer);
        out.into_iter().map(|l| centre(&l, usize::from(width))).collect()
    }
}

fn centre(text: &str, width: usize) -> String {
    let text: String = text.chars().take(width).collect();
    let pad = width.saturating_sub(text.chars().count());
    format!("{}{}{}", " ".repeat(pad / 2), text, " ".repeat(pad - pad / 2))
}

/// "12 s ago", "5 min ago", "2 h 5 min ago": time zones need not be configured.
fn ago(millis: u64) -> String {
    let s = millis / 1_000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3_600 => format!("{} min ago", s / 60),
        _ => format!("{} h {} min ago", s / 3_600, s % 3_600 / 60),
    }
}

/// Paints the screen: full-screen colour and centred lines.
pub fn draw<W: Write>(out: &mut W, screen: &Screen) -> std::io::Result<()> {
    let (width, height) = crossterm::terminal::size().unwrap_or((80, 24));
    queue!(out, SetBackgroundColor(screen.color()), SetForegroundColor(Color::White), Clear(ClearType::All))?;
    for (row, line) in screen.lines(width, height).iter().enumerate() {
        queue!(out, cursor::MoveTo(0, u16::try_from(row).unwrap_or(u16::MAX)), Print(line))?;
    }
    queue!(out, ResetColor)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_screen_says_ready_and_fills_the_terminal() {
        let lines = Screen::default().lines(20, 6);
        assert_eq!(lines.len(), 6);
        assert!(lines.iter().all(|l| l.chars().count() == 20));
        assert!(lines.iter().any(|l| l.contains("R E A D Y")));
        assert_eq!(lines.last().map(|l| l.trim()), Some("in 0   refused 0"));
    }

    #[test]
    fn annulment_takes_back_the_count() {
        let mut s = Screen { accepted: 3, rejected: 1, ..Screen::default() };
        s.annulled();
        assert_eq!(s.color(), Color::DarkYellow);
        assert!(s.lines(40, 10).iter().any(|l| l.contains("Scan again")));
        assert!(s.lines(40, 10).last().is_some_and(|l| l.contains("in 2")));
    }

    #[test]
    fn a_downloading_ticket_list_shows_as_a_bar_until_applied() {
        let mut s = Screen::default();
        s.replica_download(45, 100);
        assert!(s.lines(80, 6).last().is_some_and(|l| l.contains("tickets [####------] 45%")), "{:?}", s.lines(80, 6));
        s.replica_download(100, 100);
        assert!(s.lines(80, 6).last().is_some_and(|l| !l.contains("tickets")));
    }

    #[test]
    fn a_gate_without_an_entrance_offers_the_choices_then_names_its_entrance() {
        let mut s = Screen::default();
        s.choose_entrance(vec!["Main".into(), "VIP".into()]);
        let lines = s.lines(60, 12);
        assert_eq!(s.color(), Color::DarkBlue);
        assert!(lines.iter().any(|l| l.trim() == "2  VIP"), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("Type its number")));
        s.entrance(Some("VIP".into()));
        let lines = s.lines(60, 12);
        assert!(lines.iter().any(|l| l.contains("R E A D Y")) && s.color() == Color::Black);
        assert_eq!(lines.last().map(|l| l.trim()), Some("VIP entrance   in 0   refused 0"));
    }

    #[test]
    fn first_entry_reads_as_time_ago() {
        assert_eq!(
            (ago(12_000), ago(300_000), ago(7_500_000)),
            ("12 s ago".into(), "5 min ago".into(), "2 h 5 min ago".into())
        );
    }

    #[test]
    fn long_lines_are_cut_to_the_width() {
        assert_eq!(centre("abcdef", 4), "abcd");
        assert_eq!(centre("ab", 5), " ab  ");
    }
}
