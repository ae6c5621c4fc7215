//! Fraud scoring at reservation and order time. Each attempt is recorded with
//! what the request shows of its sender — account, client IP, device id
//! (`X-Device-Id`) and payment fingerprint — and scored by rules against what
//! those signals did before: velocity within a window, many tickets of one
//! event to one identity (an account, or anyone sharing its device or card),
//! and patterns a real buyer does not show (one device or card across several
//! accounts).
//!
//! A reservation at or above the block score is refused; an order at or above
//! the review score is paid but its tickets wait until the organizer approves
//! it from the case list (or confirms the fraud, which refunds it).
//!
//! [`assess`] is pure: the rules and weights, unit-tested here. The store
//! only counts.

use crate::common::error::ApiError;
use crate::db::{Db, Tx};
use crate::params;

/// Points for one velocity rule (per IP, account, device or card) exceeded.
pub const VELOCITY_POINTS: u32 = 50;
/// Points for more tickets of one event than one identity may have.
pub const MANY_TICKETS_POINTS: u32 = 50;
/// Points for one device or card used by more accounts than allowed.
pub const SHARED_IDENTITY_POINTS: u32 = 100;

/// The configured thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Whether attempts are scored at all.
    pub enabled: bool,
    /// How far back velocity and shared-identity counts look (seconds).
    pub window_seconds: i64,
    /// Attempts from one IP address within the window before it counts.
    pub attempts_per_ip: i64,
    /// Attempts by one account within the window.
    pub attempts_per_account: i64,
    /// Attempts from one device within the window.
    pub attempts_per_device: i64,
    /// Attempts with one payment fingerprint within the window.
    pub attempts_per_payment: i64,
    /// Tickets of one event one identity may hold (account, or its device or card).
    pub tickets_per_buyer: i64,
    /// Accounts one device may serve within the window.
    pub accounts_per_device: i64,
    /// Accounts one card may pay for within the window.
    pub accounts_per_payment: i64,
    /// An order at or above this is held for review.
    pub review_score: u32,
    /// A reservation at or above this is refused.
    pub block_score: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: 3600,
            attempts_per_ip: 60,
            attempts_per_account: 20,
            attempts_per_device: 20,
            attempts_per_payment: 10,
            tickets_per_buyer: 12,
            accounts_per_device: 3,
            accounts_per_payment: 3,
            review_score: 50,
            block_score: 100,
        }
    }
}

/// What the request shows of its sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    /// The account.
    pub user_id: i64,
    /// Client IP address, as the rate limiter keys it.
    pub ip: Option<String>,
    /// The app's device id (`X-Device-Id`).
    pub device: Option<String>,
    /// The payment method's fingerprint (orders only).
    pub payment: Option<String>,
}

/// Longest device id or payment fingerprint kept.
pub const MAX_SIGNAL_LEN: usize = 128;

/// Checks a device id or payment fingerprint from a client.
pub fn check_signal(what: &'static str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.len() <= MAX_SIGNAL_LEN && v.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(v.to_owned())),
        Some(_) => Err(ApiError::BadRequest(format!("{what}: at most {MAX_SIGNAL_LEN} printable ASCII characters"))),
    }
}

/// What the signals did before this attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    /// Attempts from the IP within the window.
    pub ip_attempts: i64,
    /// Attempts by the account within the window.
    pub account_attempts: i64,
    /// Attempts from the device within the window.
    pub device_attempts: i64,
    /// Attempts with the card within the window.
    pub payment_attempts: i64,
    /// Tickets of the event held or bought by the identity, this attempt's excluded.
    pub tickets_held: i64,
    /// Other accounts seen on the device within the window.
    pub other_accounts_on_device: i64,
    /// Other accounts seen with the card within the window.
    pub other_accounts_on_payment: i64,
}

/// A score and the rules that made it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Sum of the points of the rules that fired.
    pub score: u32,
    /// One line per rule that fired, for the organizer.
    pub reasons: Vec<String>,
}

/// Scores an attempt for `quantity` tickets.
pub fn assess(rules: &Rules, history: &History, quantity: i64) -> Assessment {
    let mut a = Assessment::default();
    let mut fire = |fired: bool, points: u32, reason: String| {
        if fired {
            a.score += points;
            a.reasons.push(reason);
        }
    };
    let velocity = [
        ("IP address", history.ip_attempts, rules.attempts_per_ip),
        ("account", history.account_attempts, rules.attempts_per_account),
        ("device", history.device_attempts, rules.attempts_per_device),
        ("payment method", history.payment_attempts, rules.attempts_per_payment),
    ];
    let minutes = rules.window_seconds / 60;
    for (what, seen, limit) in velocity {
        fire(seen >= limit, VELOCITY_POINTS, format!("{seen} earlier attempts from this {what} in {minutes} min"));
    }
    let total = history.tickets_held.saturating_add(quantity);
    fire(
        total > rules.tickets_per_buyer,
        MANY_TICKETS_POINTS,
        format!("{total} tickets of this event to one buyer (account, device or card)"),
    );
    let accounts = [
        ("device", history.other_accounts_on_device, rules.accounts_per_device),
        ("payment method", history.other_accounts_on_payment, rules.accounts_per_payment),
    ];
    for (what, others, limit) in accounts {
        let total = others + 1;
        fire(total > limit, SHARED_IDENTITY_POINTS, format!("one {what} used by {total} accounts in {minutes} min"));
    }
    a
}

/// Where in the purchase an attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `POST /events/{id}/reserve-tickets`.
    Reserve,
    /// `POST /orders`.
    Order,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Reserve => "reserve",
            Self::Order => "order",
        }
    }
}

/// Where [`history`] reads: a transaction (orders) or the store (a
/// reservation's screening, which must not queue behind writers).
pub(crate) enum Reader<'a> {
    /// Inside the order's transaction.
    Tx(&'a mut Tx),
    /// Outside any transaction.
    Db(&'a Db),
}

/// Counts what the signals did within the window, for tickets of `event_id`.
pub(crate) async fn history(
    reader: Reader<'_>,
    rules: &Rules,
    signals: &Signals,
    event_id: i64,
    exclude_hold: Option<&str>,
    now: i64,
) -> Result<History, ApiError> {
    let since = now - rules.window_seconds;
    let count = |column: &str| {
        format!("(SELECT COUNT(*) FROM fraud_signals WHERE {column} = ?{} AND at > ?1)", column_param(column))
    };
    let others = |column: &str| {
        format!(
            "(SELECT COUNT(DISTINCT user_id) FROM fraud_signals WHERE {column} = ?{} AND at > ?1 AND user_id <> ?2)",
            column_param(column)
        )
    };
    // Tickets of the event in live holds whose attempts share the account, device or card.
    let held = "(SELECT CAST(COALESCE(SUM(h.quantity), 0) AS BIGINT) FROM holds h
                 WHERE h.status IN ('active', 'ordered', 'sold') AND h.id <> ?6 AND h.id IN (
                   SELECT s.hold_id FROM fraud_signals s WHERE s.event_id = ?7 AND s.hold_id IS NOT NULL
                   AND (s.user_id = ?2 OR s.device = ?4 OR s.payment = ?5)))";
    let sql = format!(
        "SELECT {}, {}, {}, {}, {held}, {}, {}",
        count("ip"),
        count("user_id"),
        count("device"),
        count("payment"),
        others("device"),
        others("payment"),
    );
    let params = params![
        since,
        signals.user_id,
        signals.ip.clone(),
        signals.device.clone(),
        signals.payment.clone(),
        exclude_hold.unwrap_or("").to_owned(),
        event_id
    ];
    let row = match reader {
        Reader::Tx(tx) => tx.query_one(&sql, params).await?,
        Reader::Db(db) => db.query_one(&sql, params).await?,
    };
    Ok(History {
        ip_attempts: row.int(0)?,
        account_attempts: row.int(1)?,
        device_attempts: row.int(2)?,
        payment_attempts: row.int(3)?,
        tickets_held: row.int(4)?,
        other_accounts_on_device: row.int(5)?,
        other_accounts_on_payment: row.int(6)?,
    })
}

/// The parameter number each signal column is bound to in [`history`].
fn column_param(column: &str) -> u8 {
    match column {
        "user_id" => 2,
        "ip" => 3,
        "device" => 4,
        _ => 5,
    }
}

/// Records an attempt and its score.
pub(crate) async fn record(
    tx: &mut Tx,
    stage: Stage,
    signals: &Signals,
    event_id: i64,
    hold_id: Option<&str>,
    score: u32,
    now: i64,
) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO fraud_signals (at, stage, event_id, user_id, ip, device, payment, hold_id, score)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            now,
            stage.as_str(),
            event_id,
            signals.user_id,
            signals.ip.clone(),
            signals.device.clone(),
            signals.payment.clone(),
            hold_id.map(str::to_owned),
            i64::from(score)
        ],
    )
    .await?;
    Ok(())
}

/// A reservation under fraud scoring: screened before stock is taken (refused
/// at the block score), then `reserve` runs, and the attempt is recorded with
/// its hold if it got one; failed attempts count towards velocity too.
pub(crate) async fn screened_reservation(
    db: &Db,
    rules: &Rules,
    signals: &Signals,
    (event_id, quantity): (i64, i64),
    now: i64,
    reserve: impl std::future::Future<Output = Result<crate::sale::inventory::Hold, ApiError>>,
) -> Result<crate::sale::inventory::Hold, ApiError> {
    let score = screen_reservation(db, rules, signals, event_id, quantity, now).await?;
    let hold = reserve.await;
    if rules.enabled {
        let hold_id = hold.as_ref().ok().map(|h| h.id.as_str());
        record_attempt(db, Stage::Reserve, signals, event_id, hold_id, score, now).await?;
    }
    hold
}

/// Scores a reservation before stock is taken and returns the score; refused
/// at the block score. A refused attempt is recorded here; the others are
/// recorded by [`screened_reservation`] with their hold.
async fn screen_reservation(
    db: &Db,
    rules: &Rules,
    signals: &Signals,
    event_id: i64,
    quantity: i64,
    now: i64,
) -> Result<u32, ApiError> {
    if !rules.enabled {
        return Ok(0);
    }
    let history = history(Reader::Db(db), rules, signals, event_id, None, now).await?;
    let assessment = assess(rules, &history, quantity);
    if assessment.score < rules.block_score {
        return Ok(assessment.score);
    }
    record_attempt(db, Stage::Reserve, signals, event_id, None, assessment.score, now).await?;
    tracing::warn!(user = signals.user_id, ip = ?signals.ip, device = ?signals.device, score = assessment.score,
        reasons = ?assessment.reasons, "reservation refused by fraud rules");
    Err(ApiError::Forbidden("this purchase was refused by our fraud checks; contact the organizer"))
}

/// Records an attempt in its own transaction.
async fn record_attempt(
    db: &Db,
    stage: Stage,
    signals: &Signals,
    event_id: i64,
    hold_id: Option<&str>,
    score: u32,
    now: i64,
) -> Result<(), ApiError> {
    let mut tx = db.begin().await?;
    record(&mut tx, stage, signals, event_id, hold_id, score, now).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            attempts_per_ip: 5,
            attempts_per_account: 3,
            attempts_per_device: 3,
            attempts_per_payment: 2,
            tickets_per_buyer: 6,
            accounts_per_device: 2,
            accounts_per_payment: 2,
            ..Rules::default()
        }
    }

    #[test]
    fn a_quiet_first_attempt_scores_nothing() {
        assert_eq!(assess(&rules(), &History::default(), 2), Assessment::default());
    }

    #[test]
    fn each_velocity_rule_fires_at_its_limit_and_not_below() {
        let r = rules();
        type SetCount = fn(&mut History, i64);
        let cases: [(SetCount, i64); 4] = [
            (|h, n| h.ip_attempts = n, r.attempts_per_ip),
            (|h, n| h.account_attempts = n, r.attempts_per_account),
            (|h, n| h.device_attempts = n, r.attempts_per_device),
            (|h, n| h.payment_attempts = n, r.attempts_per_payment),
        ];
        for (set, limit) in cases {
            let mut h = History::default();
            set(&mut h, limit - 1);
            assert_eq!(assess(&r, &h, 1).score, 0);
            set(&mut h, limit);
            let a = assess(&r, &h, 1);
            assert_eq!(a.score, VELOCITY_POINTS);
            assert_eq!(a.reasons.len(), 1);
        }
    }

    #[test]
    fn one_velocity_rule_is_a_review_and_two_are_a_block() {
        let r = rules();
        let one = History { account_attempts: 3, ..History::default() };
        let a = assess(&r, &one, 1);
        assert!(a.score >= r.review_score && a.score < r.block_score);
        let two = History { account_attempts: 3, ip_attempts: 9, ..History::default() };
        assert!(assess(&r, &two, 1).score >= r.block_score);
    }

    #[test]
    fn tickets_count_this_attempt_on_top_of_what_is_held() {
        let r = rules();
        let h = History { tickets_held: 4, ..History::default() };
        assert_eq!(assess(&r, &h, 2).score, 0);
        let a = assess(&r, &h, 3);
        assert_eq!(a.score, MANY_TICKETS_POINTS);
        assert!(a.reasons[0].contains("7 tickets"), "{:?}", a.reasons);
    }

    #[test]
    fn a_device_or_card_across_too_many_accounts_blocks_on_its_own() {
        let r = rules();
        let device = History { other_accounts_on_device: 1, ..History::default() };
        assert_eq!(assess(&r, &device, 1).score, 0, "two accounts on one device are allowed");
        let device = History { other_accounts_on_device: 2, ..History::default() };
        assert!(assess(&r, &device, 1).score >= r.block_score);
        let card = History { other_accounts_on_payment: 2, ..History::default() };
        let a = assess(&r, &card, 1);
        assert!(a.score >= r.block_score);
        assert!(a.reasons[0].contains("payment method used by 3 accounts"), "{:?}", a.reasons);
    }

    #[test]
    fn signals_from_clients_are_bounded_and_printable() {
        assert_eq!(check_signal("device", None).ok(), Some(None));
        assert_eq!(check_signal("device", Some("  ")).ok(), Some(None));
        assert_eq!(check_signal("device", Some(" phone-1 ")).ok(), Some(Some("phone-1".into())));
        assert!(check_signal("device", Some("a b")).is_err());
        assert!(check_signal("device", Some(&"x".repeat(MAX_SIGNAL_LEN + 1))).is_err());
        assert!(check_signal("device", Some("é")).is_err());
    }
}
