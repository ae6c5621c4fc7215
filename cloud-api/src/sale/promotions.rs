//! Discount codes: an organizer creates codes for an event (percent or a
//! fixed amount off the order, a validity window, usage limits, optionally
//! only some ticket types); a customer names one when ordering and the
//! discount is checked and taken in the order's own transaction.
//!
//! A code's uses are the orders that hold it and may still be paid (pending,
//! paid, being refunded). Counting orders rather than keeping a counter means
//! a declined, expired or refunded order gives its use back with no extra
//! bookkeeping. Ordering locks the code's row first, so two orders racing
//! for its last use are serialised and only one gets it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::accounts::auth::Caller;
use crate::common::error::ApiError;
use crate::db::{Db, Row, Tx};
use crate::params;

/// Longest code, characters.
const MAX_CODE_LEN: usize = 32;
/// Order states that hold a use of their code.
const USING: &str = "('pending', 'paid', 'refunding')";

/// How a code takes money off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    /// `value` percent of the order (1–100), rounded down to the minor unit.
    Percent,
    /// `value` minor units off the order, never below zero.
    Fixed,
}

impl DiscountKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Percent => "percent",
            Self::Fixed => "fixed",
        }
    }

    fn parse(text: &str) -> Result<Self, ApiError> {
        match text {
            "percent" => Ok(Self::Percent),
            "fixed" => Ok(Self::Fixed),
            other => Err(ApiError::Internal(format!("stored discount kind {other:?}"))),
        }
    }

    /// Minor units taken off an order of `amount_minor`: at most the whole amount.
    pub fn discount(self, value: i64, amount_minor: i64) -> i64 {
        let amount = amount_minor.max(0);
        let off = match self {
            // i128: price × quantity × 100 does not fit i64 for absurd but storable prices.
            Self::Percent => i64::try_from(i128::from(amount) * i128::from(value) / 100).unwrap_or(amount),
            Self::Fixed => value,
        };
        off.clamp(0, amount)
    }
}

/// `POST /admin/events/{id}/promo-codes` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPromoCode {
    /// What customers type: 3–32 letters, digits, `-` or `_`; case does not matter.
    pub code: String,
    /// Percent or fixed.
    pub kind: DiscountKind,
    /// Percent (1–100) or minor units (> 0).
    pub value: i64,
    /// For a fixed code: the currency of `value`; orders in another currency are refused.
    #[serde(default)]
    pub currency: Option<String>,
    /// Valid from; default at once.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub starts_at: Option<OffsetDateTime>,
    /// Valid until; default until the event's sale ends.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// Orders that may use it in all; default no limit.
    #[serde(default)]
    pub max_uses: Option<i64>,
    /// Orders one customer may use it for; default no limit.
    #[serde(default)]
    pub max_uses_per_customer: Option<i64>,
    /// Only orders of these ticket types; default every type of the event.
    #[serde(default)]
    pub ticket_type_ids: Vec<i64>,
}

/// A discount code as its organizer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PromoCode {
    /// Id.
    pub id: i64,
    /// Event.
    pub event_id: i64,
    /// The code, upper case.
    pub code: String,
    /// Percent or fixed.
    pub kind: DiscountKind,
    /// Percent or minor units.
    pub value: i64,
    /// Currency of a fixed code.
    pub currency: Option<String>,
    /// Valid from (Unix seconds).
    pub starts_at: Option<i64>,
    /// Valid until (Unix seconds).
    pub ends_at: Option<i64>,
    /// Limit on orders in all.
    pub max_uses: Option<i64>,
    /// Limit on orders per customer.
    pub max_uses_per_customer: Option<i64>,
    /// Ticket types it applies to; empty: all.
    pub ticket_type_ids: Vec<i64>,
    /// Orders holding a use now (pending, paid or being refunded).
    pub uses: i64,
    /// Paid orders that used it.
    pub paid_orders: i64,
    /// Minor units given away on paid orders.
    pub discount_given_minor: i64,
    /// False once disabled.
    pub active: bool,
}

/// The canonical form of a code as typed: trimmed, upper case; `None` if it
/// cannot be a code.
pub fn normalize(code: &str) -> Option<String> {
    let code = code.trim();
    let ok = (3..=MAX_CODE_LEN).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| code.to_ascii_uppercase())
}

fn check(new: &NewPromoCode) -> Result<String, ApiError> {
    let code = normalize(&new.code)
        .ok_or_else(|| ApiError::BadRequest(format!("code: {}–{MAX_CODE_LEN} letters, digits, '-' or '_'", 3)))?;
    match new.kind {
        DiscountKind::Percent if !(1..=100).contains(&new.value) => {
            return Err(ApiError::BadRequest("value: a percentage from 1 to 100".into()));
        }
        DiscountKind::Percent if new.currency.is_some() => {
            return Err(ApiError::BadRequest("currency: only for fixed codes".into()));
        }
        DiscountKind::Fixed if new.value <= 0 || new.value > 1_000_000_000 => {
            return Err(ApiError::BadRequest("value: minor units from 1 to 1000000000".into()));
        }
        DiscountKind::Fixed if !new.currency.as_deref().is_some_and(crate::catalog::is_currency) => {
            return Err(ApiError::BadRequest("currency: a fixed code needs an ISO 4217 code, e.g. \"EUR\"".into()));
        }
        _ => {}
    }
    if let (Some(starts), Some(ends)) = (new.starts_at, new.ends_at)
        && ends <= starts
    {
        return Err(ApiError::BadRequest("ends_at: must be after starts_at".into()));
    }
    for (field, limit) in [("max_uses", new.max_uses), ("max_uses_per_customer", new.max_uses_per_customer)] {
        if limit.is_some_and(|n| n < 1) {
            return Err(ApiError::BadRequest(format!("{field}: at least 1")));
        }
    }
    if new.ticket_type_ids.len() > 100 {
        return Err(ApiError::BadRequest("ticket_type_ids: at most 100".into()));
    }
    Ok(code)
}

/// Creates a code for an event the caller organises.
pub async fn create(
    db: &Db,
    caller: &Caller,
    event_id: i64,
    new: &NewPromoCode,
    now: i64,
) -> Result<PromoCode, ApiError> {
    crate::catalog::require_event_organizer(db, caller, event_id).await?;
    let code = check(new)?;
    let mut tx = db.begin().await?;
    for type_id in &new.ticket_type_ids {
        let found = tx
            .query_opt("SELECT 1 FROM ticket_types WHERE id = ?1 AND event_id = ?2", params![*type_id, event_id])
            .await?;
        if found.is_none() {
            return Err(ApiError::BadRequest(format!("ticket_type_ids: {type_id} is not a type of this event")));
        }
    }
    let inserted = tx
        .query_one(
            "INSERT INTO promo_codes (event_id, code, kind, value, currency, starts_at, ends_at, max_uses,
                 max_uses_per_customer, active, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10) RETURNING id",
            params![
                event_id,
                code.clone(),
                new.kind.as_str(),
                new.value,
                new.currency.clone(),
                new.starts_at.map(OffsetDateTime::unix_timestamp),
                new.ends_at.map(OffsetDateTime::unix_timestamp),
                new.max_uses,
                new.max_uses_per_customer,
                now
            ],
        )
        .await;
    let id = match inserted {
        Ok(row) => row.int(0)?,
        Err(e) if e.is_duplicate() => return Err(ApiError::Conflict(format!("this event already has a code {code}"))),
        Err(e) => return Err(e.into()),
    };
    for type_id in &new.ticket_type_ids {
        tx.execute(
            "INSERT INTO promo_code_types (promo_code_id, ticket_type_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![id, *type_id],
        )
        .await?;
    }
    tx.commit().await?;
    get(db, id).await
}

/// Every code of an event the caller organises, with its uses.
pub async fn list(db: &Db, caller: &Caller, event_id: i64) -> Result<Vec<PromoCode>, ApiError> {
    crate::catalog::require_event_organizer(db, caller, event_id).await?;
    let ids = db.query("SELECT id FROM promo_codes WHERE event_id = ?1 ORDER BY id", params![event_id]).await?;
    let mut codes = Vec::with_capacity(ids.len());
    for row in ids {
        codes.push(get(db, row.int(0)?).await?);
    }
    Ok(codes)
}

/// Stops a code being used by new orders; orders that used it keep their discount.
pub async fn disable(db: &Db, caller: &Caller, code_id: i64) -> Result<PromoCode, ApiError> {
    let event = db
        .query_opt("SELECT event_id FROM promo_codes WHERE id = ?1", params![code_id])
        .await?
        .ok_or(ApiError::NotFound("promo code"))?;
    crate::catalog::require_event_organizer(db, caller, event.int(0)?).await?;
    db.execute("UPDATE promo_codes SET active = 0 WHERE id = ?1", params![code_id]).await?;
    get(db, code_id).await
}

async fn get(db: &Db, id: i64) -> Result<PromoCode, ApiError> {
    let sql = format!(
        "SELECT p.id, p.event_id, p.code, p.kind, p.value, p.currency, p.starts_at, p.ends_at, p.max_uses,
                p.max_uses_per_customer, p.active,
                (SELECT COUNT(*) FROM orders o WHERE o.promo_code_id = p.id AND o.status IN {USING}),
                (SELECT COUNT(*) FROM orders o WHERE o.promo_code_id = p.id AND o.status = 'paid'),
                (SELECT CAST(COALESCE(SUM(o.discount_minor), 0) AS BIGINT) FROM orders o
                 WHERE o.promo_code_id = p.id AND o.status = 'paid')
         FROM promo_codes p WHERE p.id = ?1"
    );
    let row = db.query_opt(&sql, params![id]).await?.ok_or(ApiError::NotFound("promo code"))?;
    let types = db
        .query(
            "SELECT ticket_type_id FROM promo_code_types WHERE promo_code_id = ?1 ORDER BY ticket_type_id",
            params![id],
        )
        .await?;
    from_row(&row, types.iter().map(|r| r.int(0)).collect::<Result<_, _>>()?)
}

fn from_row(row: &Row, ticket_type_ids: Vec<i64>) -> Result<PromoCode, ApiError> {
    Ok(PromoCode {
        id: row.int(0)?,
        event_id: row.int(1)?,
        code: row.text(2)?,
        kind: DiscountKind::parse(&row.text(3)?)?,
        value: row.int(4)?,
        currency: row.opt_text(5)?,
        starts_at: row.opt_int(6)?,
        ends_at: row.opt_int(7)?,
        max_uses: row.opt_int(8)?,
        max_uses_per_customer: row.opt_int(9)?,
        ticket_type_ids,
        uses: row.int(11)?,
        paid_orders: row.int(12)?,
        discount_given_minor: row.int(13)?,
        active: row.int(10)? != 0,
    })
}

/// What an order is charged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The code's id.
    pub code_id: i64,
    /// Minor units off.
    pub discount_minor: i64,
}

/// The order being made, as a code sees it.
#[derive(Debug, Clone, Copy)]
pub struct OrderLine<'a> {
    /// Event.
    pub event_id: i64,
    /// Ticket type.
    pub ticket_type_id: i64,
    /// Customer.
    pub user_id: i64,
    /// Price × quantity, minor units.
    pub amount_minor: i64,
    /// Currency of the order.
    pub currency: &'a str,
    /// Now (Unix seconds).
    pub now: i64,
}

/// Checks `code` for an order inside the order's transaction and returns its
/// discount. Locks the code's row, so the usage count it reads stays true
/// until the order is committed.
pub(crate) async fn apply(tx: &mut Tx, code: &str, line: OrderLine<'_>) -> Result<Applied, ApiError> {
    let unknown = || ApiError::NotFound("promo code");
    let code = normalize(code).ok_or_else(unknown)?;
    let row = tx
        .query_opt("SELECT id FROM promo_codes WHERE event_id = ?1 AND code = ?2", params![line.event_id, code.clone()])
        .await?
        .ok_or_else(unknown)?;
    let id = row.int(0)?;
    // A no-op write takes the row lock on PostgreSQL (SQLite runs one writer at a time).
    tx.execute("UPDATE promo_codes SET active = active WHERE id = ?1", params![id]).await?;
    let sql = format!(
        "SELECT p.kind, p.value, p.currency, p.starts_at, p.ends_at, p.max_uses, p.max_uses_per_customer, p.active,
                (SELECT COUNT(*) FROM orders o WHERE o.promo_code_id = p.id AND o.status IN {USING}),
                (SELECT COUNT(*) FROM orders o WHERE o.promo_code_id = p.id AND o.status IN {USING} AND o.user_id = ?2),
                (SELECT COUNT(*) FROM promo_code_types s WHERE s.promo_code_id = p.id),
                (SELECT COUNT(*) FROM promo_code_types s WHERE s.promo_code_id = p.id AND s.ticket_type_id = ?3)
         FROM promo_codes p WHERE p.id = ?1"
    );
    let p = tx.query_one(&sql, params![id, line.user_id, line.ticket_type_id]).await?;
    let refuse = |why: &str| Err(ApiError::Conflict(format!("promo code {code}: {why}")));
    if p.int(7)? == 0 {
        return refuse("no longer valid");
    }
    if p.opt_int(3)?.is_some_and(|starts| line.now < starts) {
        return refuse("not valid yet");
    }
    if p.opt_int(4)?.is_some_and(|ends| line.now >= ends) {
        return refuse("expired");
    }
    if p.int(10)? > 0 && p.int(11)? == 0 {
        return refuse("not valid for this ticket type");
    }
    let kind = DiscountKind::parse(&p.text(0)?)?;
    if let Some(currency) = p.opt_text(2)?
        && currency != line.currency
    {
        return refuse(&format!("is for orders in {currency}"));
    }
    if p.opt_int(5)?.is_some_and(|max| p.int(8).is_ok_and(|uses| uses >= max)) {
        return refuse("used up");
    }
    if p.opt_int(6)?.is_some_and(|max| p.int(9).is_ok_and(|uses| uses >= max)) {
        return refuse("you have used it as often as it allows");
    }
    Ok(Applied { code_id: id, discount_minor: kind.discount(p.int(1)?, line.amount_minor) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_down_and_fixed_never_goes_below_zero() {
        assert_eq!(DiscountKind::Percent.discount(10, 2500), 250);
        assert_eq!(DiscountKind::Percent.discount(33, 1000), 330);
        assert_eq!(DiscountKind::Percent.discount(33, 999), 329);
        assert_eq!(DiscountKind::Percent.discount(100, 5000), 5000);
        assert_eq!(DiscountKind::Fixed.discount(700, 5000), 700);
        assert_eq!(DiscountKind::Fixed.discount(7000, 5000), 5000);
        assert_eq!(DiscountKind::Fixed.discount(700, 0), 0);
        assert_eq!(DiscountKind::Percent.discount(100, i64::MAX), i64::MAX);
        assert_eq!(DiscountKind::Percent.discount(50, -3), 0);
    }

    #[test]
    fn codes_are_case_blind_and_refuse_odd_characters() {
        assert_eq!(normalize(" summer-24 ").as_deref(), Some("SUMMER-24"));
        assert_eq!(normalize("early_bird").as_deref(), Some("EARLY_BIRD"));
        for bad in ["", "ab", "with space", "ümlaut", "semi;colon", &"X".repeat(33)] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn a_discount_is_never_negative_nor_more_than_the_order(value in 0i64..=2_000_000_000, amount in -10i64..=i64::MAX / 2) {
            for kind in [DiscountKind::Percent, DiscountKind::Fixed] {
                let off = kind.discount(value, amount);
                proptest::prop_assert!(off >= 0 && off <= amount.max(0));
            }
        }
    }
}
