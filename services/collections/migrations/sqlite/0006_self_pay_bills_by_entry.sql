-- Statements read a run of accounts' self-pay bills through their journal entries; without this
-- index each entry read every self-pay bill of the tenant (a 100,000-account statement cycle
-- spent most of its time there).
CREATE INDEX self_pay_bills_by_entry ON self_pay_bills (tenant_id, entry_id);
