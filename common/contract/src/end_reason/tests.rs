use super::*;

#[test]
fn named_reasons_round_trip_through_their_names() {
    for reason in EndReason::ALL {
        assert_eq!(EndReason::parse(reason.as_str()).as_ref(), Ok(reason));
        assert!(reason.as_str().len() <= MAX_END_REASON_LEN);
    }
}

#[test]
fn resumption_table() {
    use Resumption::*;
    let table = [
        (EndReason::ClientClosed, Resumable),
        (EndReason::Drained, Resumable),
        (EndReason::Shutdown, Resumable),
        (EndReason::MaxLifetime, Resumable),
        (EndReason::IdleTimeout, Resumable),
        (EndReason::Resumed, Superseded),
        (EndReason::Killed, Final),
        (EndReason::Revoked, Final),
        (EndReason::Expired, Final),
        (EndReason::QuotaExceeded, Final),
        (EndReason::ProtocolError, Final),
        (EndReason::FrameSize, Final),
        (EndReason::FlowControl, Final),
        (EndReason::StreamId, Final),
        (EndReason::UnknownFrame, Final),
        (EndReason::HandshakeTimeout, Final),
        (EndReason::Internal, Final),
        (EndReason::ShuttingDown, Final),
        (EndReason::UnknownError, Final),
        (EndReason::Stale, Final),
        (EndReason::GatewayLost, Final),
        (EndReason::LeaseLost, Final),
    ];
    assert_eq!(
        table.len(),
        EndReason::ALL.len(),
        "every named reason is in the table"
    );
    for (reason, expected) in table {
        assert_eq!(reason.resumption(), expected, "{reason}");
        assert_eq!(reason.is_resumable(), expected == Resumable, "{reason}");
    }
    let newer = EndReason::parse("connection_lost").unwrap();
    assert_eq!(newer.resumption(), Final);
}

#[test]
fn the_length_limit_counts_bytes() {
    // 32 two-byte characters are 64 bytes: the most there is room for.
    let at_limit = "é".repeat(32);
    assert_eq!(EndReason::parse(&at_limit).unwrap().as_str(), at_limit);
    // 33 of them are 33 characters but 66 bytes: refused, though a character count would pass.
    assert_eq!(EndReason::parse(&"é".repeat(33)), Err(InvalidEndReason));
    assert_eq!(EndReason::parse(&"a".repeat(65)), Err(InvalidEndReason));
    assert_eq!(EndReason::parse(""), Err(InvalidEndReason));
}

#[test]
fn deserializing_checks_the_length_too() {
    let too_long = format!("\"{}\"", "é".repeat(33));
    assert!(serde_json::from_str::<EndReason>(&too_long).is_err());
    assert!(serde_json::from_str::<EndReason>("\"\"").is_err());
    assert_eq!(
        serde_json::from_str::<EndReason>("\"idle_timeout\"").unwrap(),
        EndReason::IdleTimeout
    );
}

#[test]
fn error_codes_map_both_ways() {
    assert_eq!(
        EndReason::from_error_code(ErrorCode::NoError),
        EndReason::Drained
    );
    for &code in ErrorCode::ALL {
        let reason = EndReason::from_error_code(code);
        if code != ErrorCode::NoError {
            assert_eq!(
                reason.as_str(),
                code.name(),
                "the reason is the code's name"
            );
        }
    }
    assert_eq!(
        EndReason::from_error_code(ErrorCode::Other(0x77)),
        EndReason::UnknownError
    );
    assert_eq!(EndReason::Expired.error_code(), ErrorCode::Expired);
    assert_eq!(
        EndReason::QuotaExceeded.error_code(),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(EndReason::Killed.error_code(), ErrorCode::Revoked);
    assert_eq!(EndReason::Revoked.error_code(), ErrorCode::Revoked);
    assert_eq!(EndReason::Resumed.error_code(), ErrorCode::NoError);
    assert_eq!(
        EndReason::parse("newer").unwrap().error_code(),
        ErrorCode::Revoked
    );
}
