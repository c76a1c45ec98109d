//! The engine's side of `engine.ha: true`: run the groups this daemon holds a lease on,
//! stop the others (see [`crate::ha`]).

use std::collections::BTreeSet;

use super::Engine;

impl Engine {
    /// Whether this daemon may run `group`: always without HA, else while it holds its lease.
    pub(super) fn leased(&self, group: &str) -> bool {
        self.ha.as_ref().is_none_or(|h| h.held.contains(group))
    }

    /// Tell the coordinator which groups there are to divide (the enabled ones).
    pub(super) fn publish_groups(&self) {
        if let Some(h) = &self.ha {
            let names = self
                .loaded
                .config
                .groups
                .iter()
                .filter(|g| self.enabled(g))
                .map(|g| g.name.to_string())
                .collect();
            h.publish(names);
        }
    }

    /// The held leases changed: start the groups gained, stop the groups lost (each lease is
    /// released once its task ended, so a group never runs on two daemons at once).
    pub(super) fn sync_leases(&mut self, held: BTreeSet<String>) {
        let Some(h) = &mut self.ha else { return };
        h.held = held;
        let lost: Vec<String> = self
            .slots
            .keys()
            .filter(|name| !self.leased(name))
            .cloned()
            .collect();
        for name in lost {
            if let Some(slot) = self.slots.remove(&name) {
                tracing::debug!(group = %name, "lease lost: stopping");
                let previous = slot.stop();
                self.retire(&name, previous);
            }
        }
        for i in 0..self.loaded.config.groups.len() {
            let g = &self.loaded.config.groups[i];
            let name = g.name.to_string();
            if self.enabled(g) && self.leased(&name) && !self.slots.contains_key(&name) {
                tracing::debug!(group = %name, "lease gained: starting");
                let previous = self.predecessor(&name);
                self.start_group(i, previous);
            }
        }
    }
}
