use super::parse_bytes;

#[test]
fn sizes() {
    assert_eq!(parse_bytes("100GiB").unwrap(), 100 * 1024 * 1024 * 1024);
    assert_eq!(parse_bytes("1.5 GB").unwrap(), 1_500_000_000);
    assert_eq!(parse_bytes("42").unwrap(), 42);
    assert!(parse_bytes("12 parsecs").is_err());
    assert!(parse_bytes("-1GB").is_err());
}
