//! The entrance door staff chose on a gate with no assignment, remembered in
//! the state folder so a restart keeps it. Written whole or not at all (temp
//! file, fsync, rename): a crash never leaves half a choice.

use std::io::Write;
use std::path::Path;

/// The file, inside the state folder.
const FILE: &str = "entrance";

/// The entrance chosen here, if any (an unreadable file counts as no choice:
/// staff are asked again).
pub fn chosen(state_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(state_dir.join(FILE)).ok()?.trim().parse().ok()
}

/// Remembers entrance `id`.
pub fn remember(state_dir: &Path, id: u32) -> std::io::Result<()> {
    let temp = state_dir.join(format!("{FILE}.tmp"));
    let mut file = std::fs::File::create(&temp)?;
    writeln!(file, "{id}")?;
    file.sync_all()?;
    std::fs::rename(&temp, state_dir.join(FILE))?;
    // The rename is durable once the folder is.
    std::fs::File::open(state_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_survives_and_damage_reads_as_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(chosen(dir.path()), None);
        remember(dir.path(), 3).expect("remember");
        assert_eq!(chosen(dir.path()), Some(3));
        remember(dir.path(), 2).expect("remember again");
        assert_eq!(chosen(dir.path()), Some(2));
        std::fs::write(dir.path().join(FILE), "VIP").expect("write");
        assert_eq!(chosen(dir.path()), None);
    }
}
