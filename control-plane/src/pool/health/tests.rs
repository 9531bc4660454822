use super::*;

const POLICY: HealthPolicy = HealthPolicy {
    unhealthy_after: 3,
    healthy_after: 2,
};

fn run(results: &[bool]) -> (HealthState, Vec<Option<Transition>>) {
    let mut state = HealthState::default();
    let mut transitions = Vec::new();
    for ok in results {
        let (next, t) = state.record(&POLICY, *ok);
        state = next;
        transitions.push(t);
    }
    (state, transitions)
}

fn t(from: Health, to: Health) -> Option<Transition> {
    Some(Transition { from, to })
}

#[test]
fn unknown_becomes_healthy_after_threshold_successes() {
    let (state, transitions) = run(&[true, true, true]);
    assert_eq!(
        transitions,
        vec![None, t(Health::Unknown, Health::Healthy), None]
    );
    assert_eq!(state.health, Health::Healthy);
    assert_eq!(state.consecutive_successes, 3);
    assert_eq!(state.consecutive_failures, 0);
}

#[test]
fn unknown_becomes_unhealthy_after_threshold_failures() {
    let (state, transitions) = run(&[false, false, false, false]);
    assert_eq!(
        transitions,
        vec![None, None, t(Health::Unknown, Health::Unhealthy), None]
    );
    assert_eq!(state.health, Health::Unhealthy);
    assert_eq!(state.consecutive_failures, 4);
}

#[test]
fn healthy_needs_consecutive_failures_to_go_unhealthy() {
    let (state, transitions) = run(&[true, true, false, false, true, false, false, false]);
    assert_eq!(transitions[1], t(Health::Unknown, Health::Healthy));
    // two failures, a success resets the streak, then three failures flip it.
    assert_eq!(&transitions[2..7], &[None, None, None, None, None]);
    assert_eq!(transitions[7], t(Health::Healthy, Health::Unhealthy));
    assert_eq!(state.health, Health::Unhealthy);
}

#[test]
fn unhealthy_recovers_after_threshold_successes() {
    let (state, transitions) = run(&[false, false, false, true, false, true, true]);
    assert_eq!(transitions[2], t(Health::Unknown, Health::Unhealthy));
    assert_eq!(&transitions[3..6], &[None, None, None]);
    assert_eq!(transitions[6], t(Health::Unhealthy, Health::Healthy));
    assert_eq!(state.health, Health::Healthy);
}

#[test]
fn flapping_node_never_transitions() {
    let mut pattern = vec![true, true]; // healthy first
    pattern.extend([false, true].repeat(50));
    let (state, transitions) = run(&pattern);
    assert_eq!(transitions.iter().flatten().count(), 1);
    assert_eq!(state.health, Health::Healthy);

    let mut pattern = vec![false, false, false]; // unhealthy first
    pattern.extend([true, false].repeat(50));
    let (state, transitions) = run(&pattern);
    assert_eq!(transitions.iter().flatten().count(), 1);
    assert_eq!(state.health, Health::Unhealthy);
}

#[test]
fn zero_thresholds_act_as_one() {
    let policy = HealthPolicy {
        unhealthy_after: 0,
        healthy_after: 0,
    };
    let (state, transition) = HealthState::default().record(&policy, true);
    assert_eq!(transition, t(Health::Unknown, Health::Healthy));
    let (_, transition) = state.record(&policy, false);
    assert_eq!(transition, t(Health::Healthy, Health::Unhealthy));
}

#[test]
fn counters_saturate() {
    let state = HealthState {
        health: Health::Unhealthy,
        consecutive_failures: u32::MAX,
        consecutive_successes: 0,
    };
    let (next, transition) = state.record(&POLICY, false);
    assert_eq!(next.consecutive_failures, u32::MAX);
    assert_eq!(transition, None);
}

#[test]
fn health_names_round_trip() {
    for h in [Health::Unknown, Health::Healthy, Health::Unhealthy] {
        assert_eq!(Health::parse(h.as_str()), Some(h));
    }
    assert_eq!(Health::parse("sick"), None);
}
