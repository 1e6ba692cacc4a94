//! The `inspect` JSON of an 835 has exactly the documented shape and values.

use medbill_x12::inspect::inspect;
use serde_json::Value;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<_> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn medicare_part_a_json() {
    let report = inspect(&fixture("lfh-x12/medicare-part-a.835"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["summary"]["transactions"], 1);
    let i = &json["interchanges"][0];
    assert_eq!(i["control_number"], "000000907");
    let g = &i["groups"][0];
    assert_eq!(g["version"], "005010X221A1");
    let tx = &g["transactions"][0];
    assert_eq!(
        keys(tx),
        [
            "balance",
            "claims",
            "closed",
            "control_number",
            "implementation",
            "payee",
            "payer",
            "payment",
            "provider_adjustments",
            "segment_count",
            "segment_index",
            "type"
        ]
    );
    assert_eq!(tx["type"], "835");
    assert_eq!(
        tx["payer"],
        serde_json::json!({"name": "INSURANCE COMPANY OF TIMBUCKTU", "id": "999"})
    );
    assert_eq!(
        tx["payee"],
        serde_json::json!({"name": "REGIONAL HOPE HOSPITAL", "npi": "6543210903"})
    );
    assert_eq!(
        tx["payment"],
        serde_json::json!({"amount": "150000.00", "method": "ACH", "credit_debit": "C", "date": "20020913", "trace_number": "12345"})
    );
    let c = &tx["claims"][0];
    for k in [
        "patient_control_number",
        "status_code",
        "charge",
        "paid",
        "patient_responsibility",
        "payer_claim_control_number",
        "adjustments",
        "remarks",
        "services",
    ] {
        assert!(c.get(k).is_some(), "claim lacks {k}");
    }
    assert_eq!(c["charge"], "211366.97");
    assert_eq!(c["patient_responsibility"], Value::Null);
    assert_eq!(c["adjustments"][0]["group"], "CO");
    assert_eq!(c["adjustments"][0]["reason"], "45");
    assert_eq!(c["adjustments"][0]["amount"], "73348.57");
    assert_eq!(c["adjustments"][0]["quantity"], Value::Null);
    assert!(
        c["adjustments"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("CO-45: ")
    );
    assert_eq!(tx["claims"][1]["remarks"][0]["code"], "MA02");
    assert_eq!(
        tx["provider_adjustments"],
        serde_json::json!([{"provider_id": "6543210903", "fiscal_period_date": "20021231", "reason": "CV", "reference": "CP", "amount": "-1.27"}])
    );
    assert_eq!(
        tx["balance"],
        serde_json::json!({"balanced": true, "problems": []})
    );
}

#[test]
fn service_json_and_imbalance() {
    let text = String::from_utf8(fixture("synthetic/reversal-plb-interest.835"))
        .unwrap()
        .replace("CLP*PCN-I1*2*1000.00*100.00", "CLP*PCN-I1*2*1000.00*90.00");
    let json = serde_json::to_value(inspect(text.as_bytes())).unwrap();
    let tx = &json["interchanges"][0]["groups"][0]["transactions"][0];
    let s = &tx["claims"][1]["services"][0];
    assert_eq!(
        s["procedure"],
        serde_json::json!({"qualifier": "HC", "code": "99214", "modifiers": ["25"]})
    );
    assert_eq!(
        s["submitted_procedure"]["modifiers"],
        serde_json::json!(["25", "59"])
    );
    assert_eq!(
        (
            s["charge"].as_str(),
            s["paid"].as_str(),
            s["units"].as_str()
        ),
        (Some("300.00"), Some("260.00"), Some("1"))
    );
    assert_eq!(s["service_date"], "20240301");
    assert_eq!(s["line_control_number"], "LINE-R1-1");
    assert_eq!(s["allowed"], "290.00");
    assert_eq!(s["remarks"][0]["code"], "N130");
    assert_eq!(s["adjustments"][1]["quantity"], "1");
    let b = &tx["balance"];
    assert_eq!(b["balanced"], false);
    let problems = b["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0]["level"], "claim");
    assert_eq!(problems[0]["claim"], "PCN-I1");
    assert_eq!(
        (
            problems[0]["expected"].as_str(),
            problems[0]["actual"].as_str()
        ),
        (Some("100.00"), Some("90.00"))
    );
    assert_eq!(problems[0]["difference"], "-10.00");
    assert_eq!(problems[1]["level"], "transaction");
    assert_eq!(problems[1]["claim"], Value::Null);
    assert_eq!(json["summary"]["errors"], 2);
}
