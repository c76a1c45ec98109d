//! The engine's side of `engine.ha: true`: run the groups this daemon holds a lease on,
//! stop the others (see [`crate::ha`]).

use std::collections::BTreeSet;

use super::{Engine, Predecessor};

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
                self.hand_over(&name, previous);
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
        // The leases shown in the statuses.
        self.layout();
    }

    /// Stop a group whose lease went to another daemon: its evaluation in flight finishes,
    /// then its lease is released. Its target is dropped without `shutdown`: a pool's
    /// instances (even with `stop_on_exit`) now belong to the new holder, which adopts them.
    fn hand_over(&mut self, name: &str, p: Predecessor) {
        self.retiring.retain(|_, r| !r.task.is_finished());
        let shared = self.shared.clone();
        let earlier = self.retiring.remove(name);
        let owned = name.to_string();
        let task = tokio::spawn(async move {
            if let Some(e) = earlier {
                let _ = e.task.await;
            }
            let _ = p.task.await;
            // The entry stays in the store ledger: the new holder updates it.
            shared.budget.remove(&owned).await;
            if let Some((_, leases)) = &shared.ha {
                crate::ha::release(leases);
            }
            None
        });
        self.retiring.insert(
            name.to_string(),
            Predecessor {
                target_raw: p.target_raw,
                task,
            },
        );
    }

    /// `once` with HA: take `group`'s lease for this one evaluation; false (and reported)
    /// when a running daemon holds it or the store cannot tell.
    pub(super) async fn lease_once(&self, group: &str, report: &mut impl FnMut(&str)) -> bool {
        let Some(h) = &self.ha else { return true };
        match h.take_once(self.shared.store.as_ref(), group).await {
            Ok(true) => true,
            Ok(false) => {
                report(&format!("{group}: skipped, another daemon holds its lease"));
                false
            }
            Err(e) => {
                report(&format!("{group}: skipped, cannot take its lease: {e}"));
                false
            }
        }
    }

    /// `once` with HA: the group's evaluation is over.
    pub(super) async fn unlease_once(&self, group: &str) {
        if let Some(h) = &self.ha {
            h.release_once(self.shared.store.as_ref(), group).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Engine, Options};

    fn config(ha: bool) -> String {
        format!(
            r#"store: {{kind: sqlite, path: sp.db}}
engine: {{ha: {ha}, lease_ttl: 1s}}
groups:
  - name: web
    min: 1
    max: 10
    evaluation_interval: 1h
    source: {{kind: static, values: {{request_rate: 40}}}}
    target: {{kind: command, command: "true"}}
    strategies:
      - {{kind: target_tracking, metric: request_rate, target_per_replica: 10}}
"#
        )
    }

    /// The handle reports the HA coordinator's view (for readiness checks): not acting
    /// before the first heartbeat, then acting with the daemon's lease; nothing without HA.
    #[tokio::test]
    async fn the_handle_reports_the_ha_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sp.yaml");
        std::fs::write(&path, config(false)).unwrap();
        let plain = Engine::open(&path, Options::default()).await.unwrap();
        assert_eq!(plain.handle().ha_status(), None);
        drop(plain);

        std::fs::write(&path, config(true)).unwrap();
        let engine = Engine::open(&path, Options::default()).await.unwrap();
        let handle = engine.handle();
        let first = handle.ha_status().expect("an HA status");
        assert!(!first.acting && first.leases_held == 0, "{first:?}");
        let running = tokio::spawn(engine.run());
        let mut status = first.clone();
        for _ in 0..200 {
            status = handle.ha_status().unwrap();
            if status.acting && status.leases_held == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(status.acting, "{status:?}");
        assert_eq!(
            (status.live_daemons, status.leases_held, status.last_error),
            (1, 1, None)
        );
        assert_eq!(status.daemon, first.daemon);
        assert!(status.since >= first.since);
        let lease = handle.groups().await.unwrap().remove(0).lease.unwrap();
        assert_eq!(lease.holder, status.daemon);
        handle.shutdown().await;
        running.await.unwrap().unwrap();
    }
}
