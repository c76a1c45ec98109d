//! The engine's side of the operator's controls: pauses, the global switch, and the checks
//! a manual scale passes before it is handed to the group's task.

use super::Engine;
use crate::group_probe::check_bounds;
use crate::handle::{HandleError, ManualScale, Pause};

impl Engine {
    /// Refuse a manual scale the control loop can already tell is wrong: out of the group's
    /// bounds without force, or while every group is switched off. (The target's own limits
    /// are checked by the group's task, which reads them.)
    pub(super) fn check_scale(&self, name: &str, m: &ManualScale) -> Result<(), HandleError> {
        let Some(group) = self.loaded.config.group(name) else {
            return Err(HandleError::NoGroup(name.to_string()));
        };
        if !self.shared.board.all_enabled() {
            return Err(HandleError::NotRunning(name.to_string()));
        }
        if !m.force {
            check_bounds(name, m.replicas, group.min, group.max)?;
        }
        Ok(())
    }

    /// Pause (or resume) `name` in a direction; kept until the group leaves the config.
    pub(super) fn set_paused(&self, name: &str, pause: Pause) -> Result<(), HandleError> {
        if self.loaded.config.group(name).is_none() {
            return Err(HandleError::NoGroup(name.to_string()));
        }
        tracing::info!(
            group = %name,
            scale_in = pause.scale_in,
            scale_out = pause.scale_out,
            "paused by hand (until changed, the group leaves the config, or a restart)"
        );
        self.shared.board.set_paused(name, pause);
        Ok(())
    }

    /// The global switch. Not an override a reload clears: it stays until switched again.
    pub(super) fn set_all_enabled(&self, enabled: bool) {
        if enabled {
            tracing::info!("all groups switched on: evaluating from their next tick");
        } else {
            tracing::warn!("all groups switched off: no evaluation until switched on again");
        }
        self.shared.board.set_all_enabled(enabled);
    }
}
