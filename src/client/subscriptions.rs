//! `pressroom subscription create|get|list|delete|seek|dead-letters|replay
//! ID` and `pressroom consume ID`: subscriptions from the terminal. `consume` prints each event
//! (as `watch` does; `-o jsonl` one JSON object per event) and acknowledges
//! it only after it is printed, so an event is never lost between the two;
//! one printed just before the process is killed may be printed again by
//! the next consumer (at least once). With `--max-events` it exits once that
//! many are printed and their acks are confirmed on disk.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};

use super::{
    ClientArgs, ClientError, connect_subscriptions,
    filter::{FacetArgs, StartArgs, StartAt, parse_time},
    output::{self, Format, OutputArgs},
    watch::print_event,
};
use crate::{
    config::parse_duration,
    domain::subscription as rules,
    proto::{
        Timestamp,
        v1::{
            CreateSubscriptionRequest, DeleteSubscriptionRequest, GetSubscriptionRequest,
            ListDeadLettersRequest, ListSubscriptionsRequest, ReplayDeadLettersRequest,
            SeekSubscriptionRequest, StartPosition, StreamSubscriptionRequest, Subscription,
            seek_subscription_request::Target, subscription::Start,
        },
    },
};

/// `pressroom subscription ...`.
#[derive(Clone, Debug, clap::Args)]
pub struct SubscriptionArgs {
    #[command(subcommand)]
    command: SubscriptionCommand,
}

#[derive(Clone, Debug, clap::Subcommand)]
enum SubscriptionCommand {
    /// Create a subscription with the id you choose.
    Create(Box<CreateArgs>),
    /// Show a subscription and where it stands.
    Get(NameArgs),
    /// List subscriptions.
    List(ListArgs),
    /// Delete a subscription (yours, or any with an admin key).
    Delete(NameArgs),
    /// Move a subscription to a cursor, a time, the beginning or now.
    Seek(SeekArgs),
    /// List a subscription's dead letters (events set aside after too
    /// many deliveries).
    DeadLetters(NameArgs),
    /// Deliver a subscription's dead letters again (all, or those named).
    Replay(ReplayArgs),
}

#[derive(Clone, Debug, clap::Args)]
struct ReplayArgs {
    /// The subscription's id.
    id: String,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Only the dead letter with this cursor (repeatable; default: all).
    #[arg(long = "cursor")]
    cursors: Vec<String>,
}

#[derive(Clone, Debug, clap::Args)]
struct CreateArgs {
    /// The subscription's id (a-z, 0-9, `-`).
    id: String,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    filter: FacetArgs,
    /// A standing query, in the language of `search`.
    #[arg(long)]
    query: Option<String>,
    #[command(flatten)]
    start: StartArgs,
    /// How long a consumer may hold an event before it is delivered again.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    ack_deadline: Duration,
    /// Deliveries before an event is set aside as a dead letter.
    #[arg(long, default_value_t = rules::DEFAULT_MAX_DELIVERIES)]
    max_deliveries: i32,
}

#[derive(Clone, Debug, clap::Args)]
struct NameArgs {
    /// The subscription's id (or `subscriptions/ID`).
    id: String,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Clone, Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Clone, Debug, clap::Args)]
struct SeekArgs {
    /// The subscription's id.
    id: String,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Deliver everything again, from the beginning of the change log.
    #[arg(long, conflicts_with_all = ["to_now", "after", "since"])]
    to_beginning: bool,
    /// Skip the backlog: deliver only what comes from now on.
    #[arg(long, conflicts_with_all = ["after", "since"])]
    to_now: bool,
    /// Deliver what comes after this cursor.
    #[arg(long, conflicts_with = "since")]
    after: Option<String>,
    /// Deliver the changes committed at or after this time.
    #[arg(long, value_parser = parse_time)]
    since: Option<Timestamp>,
}

/// `pressroom consume ID`.
#[derive(Clone, Debug, clap::Args)]
pub struct ConsumeArgs {
    /// The subscription's id.
    id: String,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// How many events this consumer may hold unacknowledged.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    max_outstanding: i32,
    /// Exit after this many events (their acks confirmed).
    #[arg(long)]
    max_events: Option<u64>,
}

/// Runs `pressroom subscription ...`.
pub(super) async fn subscription(args: SubscriptionArgs) -> Result<(), ClientError> {
    match args.command {
        SubscriptionCommand::Create(args) => create(*args).await,
        SubscriptionCommand::Get(args) => {
            let mut client = connect_subscriptions(&args.client).await?;
            let got = client
                .get_subscription(GetSubscriptionRequest {
                    name: name(&args.id),
                })
                .await?
                .into_inner();
            print(&[got], &args.output, false)
        }
        SubscriptionCommand::List(args) => {
            let mut client = connect_subscriptions(&args.client).await?;
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_subscriptions(ListSubscriptionsRequest {
                        page_size: rules::MAX_PAGE_SIZE as i32,
                        page_token,
                    })
                    .await?
                    .into_inner();
                all.extend(page.subscriptions);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            print(&all, &args.output, true)
        }
        SubscriptionCommand::Delete(args) => {
            let mut client = connect_subscriptions(&args.client).await?;
            client
                .delete_subscription(DeleteSubscriptionRequest {
                    name: name(&args.id),
                })
                .await?;
            Ok(())
        }
        SubscriptionCommand::DeadLetters(args) => dead_letters(args).await,
        SubscriptionCommand::Replay(args) => replay(args).await,
        SubscriptionCommand::Seek(args) => {
            let target = match (&args.after, args.since) {
                (Some(cursor), _) => Target::AfterCursor(cursor.clone()),
                (None, Some(time)) => Target::Time(time),
                (None, None) if args.to_beginning => {
                    Target::Position(StartPosition::Beginning as i32)
                }
                (None, None) if args.to_now => Target::Position(StartPosition::Now as i32),
                (None, None) => {
                    return Err(ClientError::Usage(
                        "say where to: --to-beginning, --to-now, --after CURSOR or --since TIME"
                            .into(),
                    ));
                }
            };
            let mut client = connect_subscriptions(&args.client).await?;
            let sought = client
                .seek_subscription(SeekSubscriptionRequest {
                    subscription: name(&args.id),
                    target: Some(target),
                })
                .await?
                .into_inner();
            print(&[sought], &args.output, false)
        }
    }
}

/// Prints every dead letter of a subscription, page after page.
async fn dead_letters(args: NameArgs) -> Result<(), ClientError> {
    let mut client = connect_subscriptions(&args.client).await?;
    let mut letters = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_dead_letters(ListDeadLettersRequest {
                subscription: name(&args.id),
                page_size: rules::MAX_PAGE_SIZE as i32,
                page_token,
            })
            .await?
            .into_inner();
        letters.extend(page.dead_letters);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let format = args.output.resolve(true);
    output::not_ninjs(format, "dead letters")?;
    match format {
        Format::Table => {
            let mut table = output::table(&[
                "CURSOR",
                "PRESS RELEASE",
                "TYPE",
                "DELIVERIES",
                "SET ASIDE",
                "REPLAYING",
            ]);
            for letter in &letters {
                table.add_row(vec![
                    letter.cursor.clone(),
                    letter.press_release.clone(),
                    letter
                        .r#type()
                        .as_str_name()
                        .trim_start_matches("EVENT_TYPE_")
                        .to_string(),
                    letter.delivery_attempts.to_string(),
                    output::time(letter.dead_letter_time),
                    if letter.replaying { "yes" } else { "" }.to_string(),
                ]);
            }
            output::line(&table.to_string())
        }
        Format::Json => output::json(&letters, format),
        _ => {
            for letter in &letters {
                output::json(letter, Format::Jsonl)?;
            }
            Ok(())
        }
    }
}

/// Delivers dead letters again and says how many.
async fn replay(args: ReplayArgs) -> Result<(), ClientError> {
    let mut client = connect_subscriptions(&args.client).await?;
    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            subscription: name(&args.id),
            cursors: args.cursors,
        })
        .await?
        .into_inner();
    match args.output.resolve(false) {
        Format::Table => output::line(&format!(
            "{} dead letter(s) of {} delivered again",
            replayed.replayed,
            name(&args.id)
        )),
        format => {
            output::not_ninjs(format, "a replay")?;
            output::json(&replayed, format)
        }
    }
}

async fn create(args: CreateArgs) -> Result<(), ClientError> {
    let start = match args.start.start() {
        StartAt::AfterCursor(cursor) => Start::AfterCursor(cursor),
        StartAt::Time(time) => Start::StartTime(time),
        StartAt::Beginning => Start::Position(StartPosition::Beginning as i32),
        StartAt::Now => Start::Position(StartPosition::Now as i32),
    };
    let mut client = connect_subscriptions(&args.client).await?;
    let created = client
        .create_subscription(CreateSubscriptionRequest {
            subscription_id: args.id.clone(),
            subscription: Some(Subscription {
                filter: args.start.to_filter(&args.filter),
                query: args.query.clone().unwrap_or_default(),
                start: Some(start),
                ack_deadline: Some(pbjson_types::Duration {
                    seconds: args.ack_deadline.as_secs() as i64,
                    nanos: args.ack_deadline.subsec_nanos() as i32,
                }),
                max_deliveries: args.max_deliveries,
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    print(&[created], &args.output, false)
}

/// Runs `pressroom consume ID`.
pub(super) async fn consume(args: ConsumeArgs) -> Result<(), ClientError> {
    let stop = crate::shutdown::signal();
    tokio::pin!(stop);
    let format = match args.output.resolve(true) {
        Format::Json => Format::Jsonl,
        other => other,
    };
    let mut client = connect_subscriptions(&args.client).await?;
    // It asks for no more than it will print: what it holds when it exits
    // is delivered again (to another consumer), counted as a delivery.
    let wanted = |printed: u64| -> i32 {
        let left = args
            .max_events
            .map_or(u64::MAX, |max| max.saturating_sub(printed).max(1));
        left.min(args.max_outstanding as u64) as i32
    };
    let (requests, receiver) = mpsc::channel(64);
    let _ = requests
        .send(StreamSubscriptionRequest {
            subscription: name(&args.id),
            max_outstanding_events: wanted(0),
            ..Default::default()
        })
        .await;
    let mut stream = client
        .stream_subscription(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    let mut printed = 0u64;
    // Acks sent and not yet confirmed durable.
    let mut unconfirmed = std::collections::HashSet::new();
    loop {
        if args.max_events.is_some_and(|max| printed >= max) && unconfirmed.is_empty() {
            return Ok(());
        }
        let message = tokio::select! {
            message = stream.next() => message,
            () = &mut stop => return Ok(()),
        };
        let Some(message) = message else {
            return Err(ClientError::Usage(
                "the server ended the stream; run again to go on".into(),
            ));
        };
        let message = message?;
        for id in &message.acknowledged_ids {
            unconfirmed.remove(id);
        }
        let mut acks = Vec::new();
        for received in message.received_events {
            if args.max_events.is_some_and(|max| printed >= max) {
                // Not ours to print: left unacknowledged, it goes to
                // another consumer once this one has gone.
                continue;
            }
            if let Some(event) = &received.event {
                print_event(event, format)?;
            }
            printed += 1;
            unconfirmed.insert(received.ack_id.clone());
            acks.push(received.ack_id);
        }
        if !acks.is_empty() {
            let _ = requests
                .send(StreamSubscriptionRequest {
                    ack_ids: acks,
                    max_outstanding_events: wanted(printed),
                    ..Default::default()
                })
                .await;
        }
    }
}

/// Subscriptions as a table, JSON or JSON Lines.
fn print(
    subscriptions: &[Subscription],
    output: &OutputArgs,
    many: bool,
) -> Result<(), ClientError> {
    let format = output.resolve(many);
    output::not_ninjs(format, "subscriptions")?;
    match format {
        Format::Table => {
            let mut table = output::table(&[
                "NAME",
                "BACKLOG",
                "OUTSTANDING",
                "DEAD LETTERS",
                "ACK DEADLINE",
                "CREATOR",
                "CREATED",
            ]);
            for s in subscriptions {
                table.add_row(vec![
                    s.name.clone(),
                    s.backlog.to_string(),
                    s.outstanding_events.to_string(),
                    s.dead_letter_count.to_string(),
                    s.ack_deadline
                        .as_ref()
                        .map(|d| format!("{}s", d.seconds))
                        .unwrap_or_default(),
                    s.creator.clone(),
                    output::time(s.create_time),
                ]);
            }
            output::line(&table.to_string())
        }
        Format::Json if !many => match subscriptions.first() {
            Some(s) => output::json(s, format),
            None => Ok(()),
        },
        Format::Json => output::json(&subscriptions, format),
        _ => {
            for s in subscriptions {
                output::json(s, Format::Jsonl)?;
            }
            Ok(())
        }
    }
}

/// `ID` or `subscriptions/ID` as a name.
fn name(id: &str) -> String {
    if id.starts_with(rules::PREFIX) {
        id.to_string()
    } else {
        rules::name(id)
    }
}
