//! Batches of signed tickets with their signed full manifest: for venues that run
//! offline, for tests and for benchmarks.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use schema::entry::{TicketStatus, UnknownTicketPolicy};
use schema::manifest::{ListDoors, ListRecord, Manifest, TicketRecord, TicketTypeRecord, VenueLayout};
use schema::{TicketClaims, TicketFlags, TicketSigner, UnixSeconds, Validity, barcode, holder};

/// File of barcodes, one per line, in ticket id order.
pub const BARCODES_FILE: &str = "barcodes.txt";
/// The signed manifest beside it.
pub const MANIFEST_FILE: &str = "manifest.txm";

/// What to mint.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    /// Venue whose gates receive the manifest.
    pub venue_id: u64,
    /// Event of every ticket.
    pub event_id: u64,
    /// Ticket type of every ticket.
    pub ticket_type_id: u32,
    /// Id of the first ticket; the rest follow.
    pub first_ticket_id: u64,
    /// How many tickets.
    pub count: u64,
    /// Manifest version.
    pub version: u64,
    /// Issue time of the manifest.
    pub now: UnixSeconds,
    /// The venue's types, lists and layout; `None`: one type, one list.
    pub doors: Option<BatchDoors>,
}

/// A venue's set-up for a batch, as JSON (`--doors FILE`): its ticket types
/// (tickets take them in turn: ticket 1 the first type, ticket 2 the second…),
/// check-in lists and layout, in the manifest's own form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchDoors {
    /// The event's ticket types, at least one.
    pub ticket_types: Vec<TicketTypeRecord>,
    /// Check-in lists.
    pub lists: Vec<ListRecord>,
    /// Entrances, areas and gates.
    #[serde(default)]
    pub layout: VenueLayout,
}

/// A full snapshot for one event: one ticket type ("General admission") and one
/// check-in list (id 1, "Main entrance") admitting every type once.
pub fn single_list_snapshot(
    venue_id: u64,
    version: u64,
    event_id: u64,
    ticket_type_id: u32,
    now: UnixSeconds,
    tickets: Vec<TicketRecord>,
) -> Manifest {
    Manifest {
        venue_id,
        version,
        base_version: None,
        issued_at: now,
        ticket_types: vec![TicketTypeRecord { id: ticket_type_id, event_id, name: "General admission".into() }],
        lists: vec![ListRecord {
            id: 1,
            name: "Main entrance".into(),
            event_id,
            ticket_types: None,
            allow_multiple_entries: false,
            allow_entry_after_exit: false,
            unknown_tickets: UnknownTicketPolicy::Reject,
            doors: ListDoors::default(),
        }],
        layout: VenueLayout::default(),
        tickets,
    }
}

/// Mints the batch into `dir`; returns the number of tickets written.
pub fn mint_batch(signer: &TicketSigner, spec: &BatchSpec, dir: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut codes = BufWriter::new(File::create(dir.join(BARCODES_FILE))?);
    let mut tickets = Vec::with_capacity(usize::try_from(spec.count).unwrap_or(0));
    let types: Vec<u32> = match &spec.doors {
        Some(doors) if !doors.ticket_types.is_empty() => doors.ticket_types.iter().map(|t| t.id).collect(),
        Some(_) => return Err(std::io::Error::other("the doors file names no ticket type")),
        None => vec![spec.ticket_type_id],
    };
    for (ticket_id, ticket_type_id) in
        (spec.first_ticket_id..spec.first_ticket_id + spec.count).zip(types.iter().cycle())
    {
        let ticket_type_id = *ticket_type_id;
        let claims = TicketClaims {
            event_id: spec.event_id,
            ticket_id,
            ticket_type_id,
            flags: TicketFlags::default(),
            validity: Validity::default(),
            seat: None,
        };
        let code = signer.mint(&claims);
        writeln!(codes, "{code}")?;
        let parsed = barcode::parse(&code).map_err(std::io::Error::other)?;
        let mut nonce = [0u8; holder::NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
        let sealed = holder::seal(&parsed.signature, ticket_id, &format!("Guest {ticket_id}"), nonce);
        tickets.push(TicketRecord {
            ticket_id,
            event_id: spec.event_id,
            ticket_type_id,
            status: TicketStatus::Valid,
            sealed_holder: Some(sealed),
        });
    }
    codes.flush()?;
    let mut manifest =
        single_list_snapshot(spec.venue_id, spec.version, spec.event_id, spec.ticket_type_id, spec.now, tickets);
    if let Some(doors) = spec.doors.clone() {
        manifest.ticket_types = doors.ticket_types;
        manifest.lists = doors.lists;
        manifest.layout = doors.layout;
    }
    std::fs::write(dir.join(MANIFEST_FILE), manifest.sign(signer))?;
    Ok(spec.count)
}
