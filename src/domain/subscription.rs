//! The rules of subscriptions that need no change log: ids and names
//! (AIP-122/133), the defaults and bounds of a new subscription, who may
//! seek or delete one, and the page tokens of their lists. The change-log
//! side (selection, delivery, acks) is `feed::subscriptions`.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use super::{Caller, DomainError, Role, filter, standing_query, validate::is_valid_time};
use crate::proto::v1::{CreateSubscriptionRequest, Subscription, subscription::Start};

/// The collection of subscription names.
pub const PREFIX: &str = "subscriptions/";
/// Ack deadline when none is given.
pub const DEFAULT_ACK_DEADLINE: Duration = Duration::from_secs(60);
/// Shortest ack deadline.
pub const MIN_ACK_DEADLINE: Duration = Duration::from_secs(1);
/// Longest ack deadline.
pub const MAX_ACK_DEADLINE: Duration = Duration::from_secs(600);
/// Deliveries before an event becomes a dead letter, when none is given.
pub const DEFAULT_MAX_DELIVERIES: i32 = 5;
/// Most deliveries a subscription may allow.
pub const MAX_MAX_DELIVERIES: i32 = 1_000;
/// Most events one stream may hold unacknowledged.
pub const MAX_OUTSTANDING: i32 = 10_000;
/// Page size of lists when none is given.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page of lists.
pub const MAX_PAGE_SIZE: usize = 500;

/// The name of the subscription with this id.
pub fn name(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// Checks a subscription id (1–63 of `a-z0-9-`, starting with a letter,
/// not ending with `-`).
pub fn check_id(field: &str, id: &str) -> Result<(), DomainError> {
    let valid = (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            "must be 1 to 63 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'",
        ))
    }
}

/// The id in a subscription name.
pub fn parse_name<'a>(field: &str, name: &'a str) -> Result<&'a str, DomainError> {
    let Some(id) = name.strip_prefix(PREFIX) else {
        return Err(DomainError::invalid(
            field,
            "must be subscriptions/{subscription}",
        ));
    };
    check_id(field, id)?;
    Ok(id)
}

/// A subscription to store, made from a create request: its id, the
/// resource with defaults filled in and output-only fields set, and where
/// it starts.
pub struct NewSubscription {
    /// The id chosen.
    pub id: String,
    /// The resource as stored.
    pub subscription: Subscription,
    /// Where it starts (`None`: now).
    pub start: Option<Start>,
}

/// Checks a create request; every violation is reported at once.
pub fn validate_new(
    request: CreateSubscriptionRequest,
    caller: &Caller,
) -> Result<NewSubscription, DomainError> {
    let mut violations = Vec::new();
    let mut note = |result: Result<(), DomainError>| {
        if let Err(DomainError::InvalidArgument(mut v)) = result {
            violations.append(&mut v);
        }
    };
    note(check_id("subscription_id", &request.subscription_id));
    let Some(mut subscription) = request.subscription else {
        note(Err(DomainError::invalid("subscription", "is required")));
        return Err(DomainError::InvalidArgument(violations));
    };
    note(filter::to_query(subscription.filter.as_ref(), "subscription.filter").map(|_| ()));
    if !subscription.query.is_empty() {
        note(
            standing_query(&subscription.query)
                .map(|_| ())
                .map_err(|error| rename(error, "subscription.query")),
        );
    }
    match &subscription.ack_deadline {
        None => {
            subscription.ack_deadline = Some(duration(DEFAULT_ACK_DEADLINE));
        }
        Some(deadline) => {
            let valid = deadline.seconds >= 0
                && (0..1_000_000_000).contains(&deadline.nanos)
                && Duration::new(deadline.seconds as u64, deadline.nanos as u32)
                    >= MIN_ACK_DEADLINE
                && Duration::new(deadline.seconds as u64, deadline.nanos as u32)
                    <= MAX_ACK_DEADLINE;
            if !valid {
                note(Err(DomainError::invalid(
                    "subscription.ack_deadline",
                    "must be between 1 s and 600 s",
                )));
            }
        }
    }
    match subscription.max_deliveries {
        0 => subscription.max_deliveries = DEFAULT_MAX_DELIVERIES,
        n if (1..=MAX_MAX_DELIVERIES).contains(&n) => {}
        _ => note(Err(DomainError::invalid(
            "subscription.max_deliveries",
            "must be between 1 and 1000 (0 means 5)",
        ))),
    }
    if let Some(Start::StartTime(time)) = &subscription.start
        && !is_valid_time(time)
    {
        note(Err(DomainError::invalid(
            "subscription.start_time",
            "must be a valid timestamp between 0001-01-01 and 9999-12-31",
        )));
    }
    if !violations.is_empty() {
        return Err(DomainError::InvalidArgument(violations));
    }
    let start = subscription.start.take();
    subscription.name = name(&request.subscription_id);
    subscription.creator = caller.name.clone();
    subscription.create_time = Some(crate::proto::now());
    subscription.acked_cursor = String::new();
    subscription.outstanding_events = 0;
    subscription.backlog = 0;
    subscription.dead_letter_count = 0;
    Ok(NewSubscription {
        id: request.subscription_id,
        subscription,
        start,
    })
}

/// The ack deadline of a stored subscription.
pub fn ack_deadline(subscription: &Subscription) -> Duration {
    subscription
        .ack_deadline
        .as_ref()
        .filter(|d| d.seconds >= 0 && d.nanos >= 0)
        .map(|d| Duration::new(d.seconds as u64, d.nanos as u32))
        .unwrap_or(DEFAULT_ACK_DEADLINE)
        .clamp(MIN_ACK_DEADLINE, MAX_ACK_DEADLINE)
}

/// Whether `caller` may seek or delete `subscription`: its creator, or an
/// admin.
pub fn check_owner(
    subscription: &Subscription,
    caller: &Caller,
    what: &str,
) -> Result<(), DomainError> {
    if caller.role >= Role::Admin || subscription.creator == caller.name {
        return Ok(());
    }
    Err(DomainError::PermissionDenied(format!(
        "{what} {} needs the admin role: it was created with the key {:?}, not {:?}",
        subscription.name, subscription.creator, caller.name
    )))
}

/// The page size asked for, defaulted and capped.
pub fn page_size(field: &str, size: i32) -> Result<usize, DomainError> {
    match size {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(DomainError::invalid(field, "must not be negative")),
        n => Ok((n as usize).min(MAX_PAGE_SIZE)),
    }
}

/// A page token carrying the last key of a page.
pub fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("s1:{last}"))
}

/// The last key of the page before, from its token (`""` for none).
fn decode_token(token: &str) -> Result<String, DomainError> {
    if token.is_empty() {
        return Ok(String::new());
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("s1:").map(str::to_string))
        .ok_or_else(foreign_token)
}

/// The last subscription id of the page before, from a ListSubscriptions
/// token (`""` for none): a key that is no id was not made here.
pub fn decode_subscriptions_token(token: &str) -> Result<String, DomainError> {
    let after = decode_token(token)?;
    if after.is_empty() || check_id("page_token", &after).is_ok() {
        Ok(after)
    } else {
        Err(foreign_token())
    }
}

/// The last dead letter's log position of the page before, from a
/// ListDeadLetters token (0 for none).
pub fn decode_dead_letters_token(token: &str) -> Result<u64, DomainError> {
    match decode_token(token)?.as_str() {
        "" => Ok(0),
        text => text.parse().map_err(|_| foreign_token()),
    }
}

fn foreign_token() -> DomainError {
    DomainError::invalid("page_token", "is not a page token of this list")
}

fn duration(d: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// The same error with its violations moved to `field`.
fn rename(error: DomainError, field: &str) -> DomainError {
    match error {
        DomainError::InvalidArgument(violations) => DomainError::InvalidArgument(
            violations
                .into_iter()
                .map(|mut v| {
                    v.field = field.to_string();
                    v
                })
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_aip_122() {
        for good in ["a", "orders", "wire-2", &"a".repeat(63)] {
            assert!(check_id("id", good).is_ok(), "{good}");
        }
        for bad in ["", "A", "1a", "a-", "a_b", "a/b", "é", &"a".repeat(64)] {
            assert!(check_id("id", bad).is_err(), "{bad}");
        }
        assert_eq!(parse_name("name", "subscriptions/x").ok(), Some("x"));
        assert!(parse_name("name", "subscription/x").is_err());
    }

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode_token(&encode_token("abc")).ok(), Some("abc".into()));
        assert_eq!(decode_token("").ok(), Some(String::new()));
        assert!(decode_token("bm9wZQ").is_err());
        // Each list's tokens, and only its own.
        let subscriptions = encode_token("orders");
        let letters = encode_token("42");
        assert_eq!(
            decode_subscriptions_token(&subscriptions).ok(),
            Some("orders".into())
        );
        assert_eq!(decode_dead_letters_token(&letters).ok(), Some(42));
        assert!(decode_subscriptions_token(&letters).is_err());
        assert!(decode_dead_letters_token(&subscriptions).is_err());
        assert!(decode_subscriptions_token(&encode_token("orders\0")).is_err());
    }

    #[test]
    fn defaults_are_filled_and_bounds_checked() {
        let caller = Caller::unauthenticated();
        let made = validate_new(
            CreateSubscriptionRequest {
                subscription_id: "s".into(),
                subscription: Some(Subscription::default()),
            },
            &caller,
        );
        let made = made.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ack_deadline(&made.subscription), DEFAULT_ACK_DEADLINE);
        assert_eq!(made.subscription.max_deliveries, DEFAULT_MAX_DELIVERIES);
        assert_eq!(made.subscription.name, "subscriptions/s");
        let bad = validate_new(
            CreateSubscriptionRequest {
                subscription_id: "S".into(),
                subscription: Some(Subscription {
                    max_deliveries: -1,
                    ack_deadline: Some(pbjson_types::Duration {
                        seconds: 0,
                        nanos: 5,
                    }),
                    query: "\"".into(),
                    ..Default::default()
                }),
            },
            &caller,
        );
        match bad {
            Err(DomainError::InvalidArgument(v)) => {
                let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
                assert_eq!(
                    fields,
                    [
                        "subscription_id",
                        "subscription.query",
                        "subscription.ack_deadline",
                        "subscription.max_deliveries"
                    ]
                );
            }
            other => panic!("{:?}", other.err()),
        }
    }
}
