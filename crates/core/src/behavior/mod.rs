//! Behavior: the rules between the combined recommendation and the action.
//!
//! Each rule is a small pure function over the group state; `decide` applies them in the
//! order of [`crate::decision::Rule`] and records every one that changed the count.

mod rate;
mod stabilization;

pub use rate::{rate_limit_down, rate_limit_up};
pub use stabilization::stabilize;

use jiff::SignedDuration;

use crate::hours::BusinessHours;

/// Validated behavior of a group.
#[derive(Debug, Clone)]
pub struct Behavior {
    pub scale_up: DirectionRules,
    pub scale_down: DirectionRules,
    /// After any action, no action for this long.
    pub cooldown: SignedDuration,
    pub fallback: Option<Fallback>,
    pub business_hours_only: Option<BusinessHours>,
}

/// Rules for one direction.
#[derive(Debug, Clone)]
pub struct DirectionRules {
    pub stabilization: SignedDuration,
    pub policies: Vec<RatePolicy>,
    pub select: Select,
    pub cooldown: SignedDuration,
    pub max_step: Option<u32>,
}

/// At most `value` pods or percent per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    pub kind: RateKind,
    pub value: u32,
    pub period: SignedDuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKind {
    Pods,
    Percent,
}

/// How several rate policies combine (Kubernetes `selectPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// The policy allowing the largest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// Fixed count after repeated metric failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    pub after: u32,
    pub replicas: u32,
}

impl DirectionRules {
    /// Kubernetes autoscaling/v2 default for scale-up: no stabilization, at most
    /// max(4 pods, 100 %) per 15 s.
    pub fn default_up() -> DirectionRules {
        DirectionRules {
            stabilization: SignedDuration::ZERO,
            policies: vec![
                RatePolicy {
                    kind: RateKind::Pods,
                    value: 4,
                    period: SignedDuration::from_secs(15),
                },
                RatePolicy {
                    kind: RateKind::Percent,
                    value: 100,
                    period: SignedDuration::from_secs(15),
                },
            ],
            select: Select::Max,
            cooldown: SignedDuration::ZERO,
            max_step: None,
        }
    }

    /// Kubernetes autoscaling/v2 default for scale-down: 300 s stabilization, up to 100 % per 15 s.
    pub fn default_down() -> DirectionRules {
        DirectionRules {
            stabilization: SignedDuration::from_secs(300),
            policies: vec![RatePolicy {
                kind: RateKind::Percent,
                value: 100,
                period: SignedDuration::from_secs(15),
            }],
            select: Select::Max,
            cooldown: SignedDuration::ZERO,
            max_step: None,
        }
    }
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            scale_up: DirectionRules::default_up(),
            scale_down: DirectionRules::default_down(),
            cooldown: SignedDuration::ZERO,
            fallback: None,
            business_hours_only: None,
        }
    }
}

impl Behavior {
    /// How far back recommendations and scale events must be kept.
    pub fn history_horizon(&self) -> (SignedDuration, SignedDuration) {
        let recs = self
            .scale_up
            .stabilization
            .max(self.scale_down.stabilization);
        let events = self
            .scale_up
            .policies
            .iter()
            .chain(&self.scale_down.policies)
            .map(|p| p.period)
            .max()
            .unwrap_or(SignedDuration::ZERO);
        (recs, events)
    }
}
