//! The mailbox transport over real temporary directories.

use bytes::Bytes;
use medbill_connect::Mailbox;
use medbill_connect::{
    BatchTransport, ConnectError, Connection, ErrorKind, InboundKind, MailboxConfig, MailboxSide,
    OutboundFile, PayerConnection, PayloadType, RetryPolicy, TransportConfig,
};

fn file(label: &str, contents: &'static [u8]) -> OutboundFile {
    OutboundFile {
        label: label.into(),
        contents: Bytes::from_static(contents),
    }
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn submitted_file_lands_whole_in_outbound_and_the_partner_archives_it() {
    let root = tempfile::tempdir().unwrap();
    let provider = Mailbox::open(root.path(), MailboxSide::Provider).unwrap();
    let partner = Mailbox::open(root.path(), MailboxSide::Partner).unwrap();

    let receipt = provider
        .submit(file("837P", b"ISA*837 batch~"))
        .await
        .unwrap();

    assert_eq!(receipt.size, 14);
    assert!(
        receipt.submission_id.ends_with("-837P.x12"),
        "{}",
        receipt.submission_id
    );
    // Only the final name is visible: no temporary file is left behind.
    assert_eq!(
        names_in(&root.path().join("outbound")),
        std::slice::from_ref(&receipt.submission_id)
    );
    assert_eq!(
        std::fs::read(root.path().join("outbound").join(&receipt.submission_id)).unwrap(),
        b"ISA*837 batch~"
    );

    let picked = partner
        .next_inbound(InboundKind::Any)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(picked.file_id, receipt.submission_id);
    assert_eq!(&picked.contents[..], b"ISA*837 batch~");
    assert_eq!(
        picked.checksum,
        medbill_connect::envelope::checksum(b"ISA*837 batch~")
    );
    partner.acknowledge(&picked.file_id).await.unwrap();

    assert!(names_in(&root.path().join("outbound")).is_empty());
    assert_eq!(
        names_in(&root.path().join("archive").join("outbound")),
        [receipt.submission_id]
    );
    assert!(
        partner
            .next_inbound(InboundKind::Any)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn inbound_files_come_in_the_order_they_were_written() {
    let root = tempfile::tempdir().unwrap();
    let provider = Mailbox::open(root.path(), MailboxSide::Provider).unwrap();
    let partner = Mailbox::open(root.path(), MailboxSide::Partner).unwrap();
    for contents in [&b"first 999~"[..], b"second 277CA~", b"third 835~"] {
        partner
            .submit(OutboundFile {
                label: "result".into(),
                contents: Bytes::from_static(contents),
            })
            .await
            .unwrap();
    }
    // A partial upload and a hidden file are not picked up.
    std::fs::write(root.path().join("inbound").join("big.835.part"), b"half").unwrap();
    std::fs::write(root.path().join("inbound").join(".upload"), b"half").unwrap();

    let mut seen = Vec::new();
    while let Some(inbound) = provider.next_inbound(InboundKind::Any).await.unwrap() {
        seen.push(String::from_utf8(inbound.contents.to_vec()).unwrap());
        provider.acknowledge(&inbound.file_id).await.unwrap();
    }

    assert_eq!(seen, ["first 999~", "second 277CA~", "third 835~"]);
    assert_eq!(
        names_in(&root.path().join("archive").join("inbound")).len(),
        3
    );
    assert_eq!(
        names_in(&root.path().join("inbound")),
        [".upload".to_owned(), "big.835.part".to_owned()]
    );
}

#[tokio::test]
async fn restart_neither_loses_nor_double_reads_a_file() {
    let root = tempfile::tempdir().unwrap();
    let partner = Mailbox::open(root.path(), MailboxSide::Partner).unwrap();
    partner.submit(file("a", b"file A~")).await.unwrap();
    partner.submit(file("b", b"file B~")).await.unwrap();

    // First run: picks up A, crashes before acknowledging it.
    let first_id = {
        let run = Mailbox::open(root.path(), MailboxSide::Provider).unwrap();
        let a = run.next_inbound(InboundKind::Any).await.unwrap().unwrap();
        assert_eq!(&a.contents[..], b"file A~");
        a.file_id
    };

    // Second run: A again (same id, so the consumer can deduplicate); this time it is acknowledged.
    {
        let run = Mailbox::open(root.path(), MailboxSide::Provider).unwrap();
        let a = run.next_inbound(InboundKind::Any).await.unwrap().unwrap();
        assert_eq!(a.file_id, first_id);
        assert_eq!(&a.contents[..], b"file A~");
        run.acknowledge(&a.file_id).await.unwrap();
    }

    // Third run: A is gone for good; B is next; a repeated acknowledgement is harmless.
    let run = Mailbox::open(root.path(), MailboxSide::Provider).unwrap();
    let b = run.next_inbound(InboundKind::Any).await.unwrap().unwrap();
    assert_eq!(&b.contents[..], b"file B~");
    run.acknowledge(&b.file_id).await.unwrap();
    run.acknowledge(&b.file_id).await.unwrap();
    assert!(run.next_inbound(InboundKind::Any).await.unwrap().is_none());
    assert_eq!(
        names_in(&root.path().join("archive").join("inbound")).len(),
        2
    );

    // Acknowledging a file that never existed is an error naming the mailbox path.
    let err = run.acknowledge("never-there.x12").await.unwrap_err();
    assert!(matches!(err, ConnectError::Mailbox { .. }), "{err}");
    let err = run.acknowledge("../outbound/x").await.unwrap_err();
    assert!(matches!(err, ConnectError::BadFileName(_)), "{err}");
}

#[tokio::test]
async fn interrupted_write_leaves_nothing_visible_and_is_cleaned_on_open() {
    let root = tempfile::tempdir().unwrap();
    let provider = Mailbox::open(root.path(), MailboxSide::Provider).unwrap();
    // What a crash between create and rename leaves behind.
    let stale = root.path().join("outbound").join(".tmp-0192-837P.x12");
    std::fs::write(&stale, b"half a fi").unwrap();
    let partner = Mailbox::open(root.path(), MailboxSide::Partner).unwrap();
    assert!(
        partner
            .next_inbound(InboundKind::Any)
            .await
            .unwrap()
            .is_none()
    );
    drop(provider);

    let _reopened = Mailbox::open(root.path(), MailboxSide::Provider).unwrap();
    assert!(!stale.exists());
}

#[tokio::test]
async fn mailbox_connection_carries_batches_but_not_real_time() {
    let root = tempfile::tempdir().unwrap();
    let config = PayerConnection {
        payer_id: "ACME".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "ACMEHEALTH".into(),
        transport: TransportConfig::Mailbox(MailboxConfig {
            dir: root.path().join("acme"),
        }),
        batch_transport: None,
        retry: RetryPolicy::default(),
    };
    let connection = Connection::open(&config).unwrap();

    let err = connection
        .exchange(PayloadType::X12_270_REQUEST, Bytes::from_static(b"ISA~"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Unsupported { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Local);

    let receipt = connection
        .submit_batch(file("837I", b"claims~"))
        .await
        .unwrap();
    assert!(
        root.path()
            .join("acme/outbound")
            .join(&receipt.submission_id)
            .exists()
    );
}

/// An interchange header of 106 bytes (`*` elements, `~` segments) and `rest` after it.
fn interchange(rest: &str) -> Bytes {
    let isa = "ISA*00*          *00*          *ZZ*SIMPPO         *ZZ*MEDBILL        \
               *260302*0930*^*00501*000000001*0*P*:~";
    assert_eq!(isa.len(), 106);
    Bytes::from(format!("{isa}\n{rest}"))
}

#[tokio::test]
async fn retrieval_by_kind_takes_its_own_files_past_the_others() {
    let root = tempfile::tempdir().unwrap();
    let provider = Mailbox::open(root.path(), MailboxSide::Provider).unwrap();
    let partner = Mailbox::open(root.path(), MailboxSide::Partner).unwrap();
    let files = [
        (
            "999",
            interchange("GS*FA*SIMPPO*MEDBILL*20260302*0930*1*X*005010X231A1~ST*999*0001~"),
        ),
        (
            "835",
            interchange("GS*HP*SIMPPO*MEDBILL*20260302*0930*2*X*005010X221A1~ST*835*0001~"),
        ),
        (
            "TA1",
            interchange("TA1*000000001*260302*0930*R*022~IEA*0*000000001~"),
        ),
        (
            "277CA",
            interchange("GS*HN*SIMPPO*MEDBILL*20260302*0930*3*X*005010X214~ST*277*0001~"),
        ),
    ];
    for (label, contents) in files {
        partner
            .submit(OutboundFile {
                label: label.into(),
                contents,
            })
            .await
            .unwrap();
        // Names and modification times order the files as sent.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let kind_of = |f: &medbill_connect::InboundFile| {
        let text = String::from_utf8(f.contents.to_vec()).unwrap();
        ["999", "835", "TA1", "277"]
            .into_iter()
            .find(|id| text.contains(&format!("ST*{id}*")) || text.contains(&format!("\n{id}*")))
            .unwrap()
    };

    // The 835 is taken first although an acknowledgement is older.
    let era = provider
        .next_inbound(InboundKind::Remittance)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kind_of(&era), "835");
    assert_eq!(InboundKind::of(&era.contents), InboundKind::Remittance);
    provider.acknowledge(&era.file_id).await.unwrap();
    assert!(
        provider
            .next_inbound(InboundKind::Remittance)
            .await
            .unwrap()
            .is_none()
    );

    let mut acknowledgements = Vec::new();
    while let Some(f) = provider
        .next_inbound(InboundKind::Acknowledgements)
        .await
        .unwrap()
    {
        assert_eq!(InboundKind::of(&f.contents), InboundKind::Acknowledgements);
        acknowledgements.push(kind_of(&f));
        provider.acknowledge(&f.file_id).await.unwrap();
    }
    assert_eq!(acknowledgements, ["999", "TA1", "277"]);
    assert!(
        provider
            .next_inbound(InboundKind::Any)
            .await
            .unwrap()
            .is_none()
    );
}
