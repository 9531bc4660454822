use super::*;

#[test]
fn range_shows_one_value_when_the_runs_agree() {
    assert_eq!(range(&[441.2], 0), "441");
    assert_eq!(range(&[441.2, 440.9], 0), "441");
    assert_eq!(range(&[493.0, 441.0, 470.0], 0), "441–493");
    assert_eq!(range(&[0.851, 1.2], 2), "0.85–1.20");
}

#[test]
fn median_of_odd_and_even_counts() {
    assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    assert!(median(Vec::new()).is_nan());
}
