//! `inspect` JSON for 271, 277CA, 999, 837, 270 and 276 transaction sets.

use medbill_x12::inspect::inspect;
use serde_json::{Value, json};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn first_set(path: &str) -> Value {
    let report = serde_json::to_value(inspect(&fixture(path))).unwrap();
    report["interchanges"][0]["groups"][0]["transactions"][0].clone()
}

#[test]
fn eligibility_271_json() {
    let t = first_set("lfh-x12/subscriber-health-benefit-check.271");
    assert_eq!(t["type"], "271");
    assert_eq!(t["subscriber"]["member_id"], "123456789");
    assert_eq!(t["subscriber"]["birth_date"], "1963-05-19");
    assert_eq!(t["benefits"].as_array().unwrap().len(), 5);
    assert_eq!(t["benefits"][3]["amount"], "10.00");
    assert_eq!(t["benefits"][3]["in_network"], true);
    assert_eq!(
        t["benefits"][2]["service_types"].as_array().unwrap().len(),
        10
    );
    assert_eq!(t["rejections"], json!([]));
    assert_eq!(t["benefits"][0]["info_description"], "Active Coverage");
    let s = &t["summary"];
    assert_eq!(s["active"], true);
    assert_eq!(s["plan"], "GOLD 123 PLAN");
    assert_eq!(s["deductible_remaining"], Value::Null);
    assert_eq!(s["copays"]["98"], "10.00");
    assert_eq!(s["copays"]["UC"], "10.00");
    assert!(t.get("more_subscribers").is_none());

    let t = first_set("lfh-x12/subscriber-health-benefit-check-error.271");
    assert_eq!(
        t["rejections"],
        json!([{ "level": "receiver", "valid_request": true, "reason": "50", "follow_up": "N",
                 "description": "Provider Ineligible for Inquiries" }])
    );
    assert_eq!(t["subscriber"], Value::Null);
}

#[test]
fn claim_acknowledgment_and_999_json() {
    let t = first_set("imsweb-x12-parser/x12_277CA_rejected.txt");
    assert_eq!(t["kind"], "claim_acknowledgment");
    assert_eq!(t["claims"][0]["patient_control_number"], "3920394930203");
    let code = &t["claims"][0]["statuses"][0]["codes"][0];
    assert_eq!(
        (&code["category"], &code["status"], &code["entity"]),
        (&json!("A7"), &json!("562"), &json!("85"))
    );
    let meaning = code["category_description"].as_str().unwrap();
    assert!(
        meaning.starts_with("Acknowledgement/Rejected for Invalid Information"),
        "{meaning}"
    );
    assert_eq!(t["claims"][0]["statuses"][0]["charge"], "199.14");

    let t = first_set("imsweb-x12-parser/x12_999_rejected.txt");
    assert_eq!(t["status"], "R");
    assert_eq!(t["accepted"], 0);
    assert_eq!(t["sets"][0]["errors"][0]["segment_id"], "NM");
    assert_eq!(t["sets"][0]["status"], "R");
}

#[test]
fn claims_and_inquiries_json() {
    let t = first_set("lfh-x12/demo.example1.837");
    assert_eq!(
        t["claims"][0]["claim"]["patient_control_number"],
        "26463774"
    );
    assert_eq!(t["claims"][0]["claim"]["total_charge"], "100.00");
    assert_eq!(t["claims"][0]["claim"]["frequency"], "original");
    assert_eq!(t["claims"][0]["lines"].as_array().unwrap().len(), 4);

    let t = first_set("lfh-x12/subscriber-health-benefit-check.270");
    assert_eq!(t["service_types"], json!(["30"]));
    let t = first_set("lfh-x12/claim-level-status.276");
    assert_eq!(t["claims"][0]["total_charge"], "8513.88");
}
