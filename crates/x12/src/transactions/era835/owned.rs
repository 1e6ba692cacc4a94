//! Owned copies of the 835 model: [`Relife`] turns a value that borrows its
//! text from the input into one that owns it, so it can outlive the input (a
//! claim kept past [`super::Era835Visitor::claim`], or the state the windowed
//! reader carries from one buffer window to the next), typed with whatever
//! lifetime the caller needs. The model's types are invariant in their
//! lifetime (their small vectors are), so even owned text needs this to be
//! given a shorter one.

use std::borrow::Cow;
use std::collections::VecDeque;

use rust_decimal::Decimal;
use smallvec::SmallVec;

use super::{
    Adjustment, AmountRef, ClaimPayment, Contact, DateRef, Era835Builder, Era835Check,
    HeaderNumber, InpatientAdjudication, Name, OutpatientAdjudication, Party, Payment, Procedure,
    ProviderAdjustment, ProviderSummary, QuantityRef, Reference, Remark, Remittance,
    ServicePayment, SetReader, Trace,
};

/// A value whose text can be given the lifetime `'b`: borrowed text is
/// copied, owned text moves without a copy.
pub trait Relife<'b> {
    /// The same type with lifetime `'b` and every text owned.
    type Out;
    /// Copies borrowed text and moves the rest.
    fn relife(self) -> Self::Out;
}

impl<'b> Relife<'b> for Cow<'_, str> {
    type Out = Cow<'b, str>;
    fn relife(self) -> Cow<'b, str> {
        Cow::Owned(self.into_owned())
    }
}

/// Values without borrowed text stay as they are.
macro_rules! unchanged {
    ($($t:ty),*) => {
        $(impl Relife<'_> for $t {
            type Out = $t;
            fn relife(self) -> $t {
                self
            }
        })*
    };
}

unchanged!(Decimal, usize, bool);

impl<'b, T: Relife<'b>> Relife<'b> for Option<T> {
    type Out = Option<T::Out>;
    fn relife(self) -> Self::Out {
        self.map(Relife::relife)
    }
}

impl<'b, T: Relife<'b>> Relife<'b> for Box<T> {
    type Out = Box<T::Out>;
    fn relife(self) -> Self::Out {
        Box::new((*self).relife())
    }
}

impl<'b, A: Relife<'b>, B: Relife<'b>> Relife<'b> for (A, B) {
    type Out = (A::Out, B::Out);
    fn relife(self) -> Self::Out {
        (self.0.relife(), self.1.relife())
    }
}

impl<'b, T: Relife<'b>> Relife<'b> for Vec<T> {
    type Out = Vec<T::Out>;
    fn relife(self) -> Self::Out {
        self.into_iter().map(Relife::relife).collect()
    }
}

impl<'b, T: Relife<'b>> Relife<'b> for VecDeque<T> {
    type Out = VecDeque<T::Out>;
    fn relife(self) -> Self::Out {
        self.into_iter().map(Relife::relife).collect()
    }
}

impl<'b, T: Relife<'b>, const N: usize> Relife<'b> for SmallVec<[T; N]> {
    type Out = SmallVec<[T::Out; N]>;
    fn relife(self) -> Self::Out {
        self.into_iter().map(Relife::relife).collect()
    }
}

/// A model struct: each field is copied. The pattern and the literal both
/// name every field, so a field added to the struct and not here fails to
/// compile.
macro_rules! each_field {
    ($($name:ident { $($field:ident),* $(,)? }),* $(,)?) => {
        $(impl<'b> Relife<'b> for $name<'_> {
            type Out = $name<'b>;
            fn relife(self) -> $name<'b> {
                let $name { $($field),* } = self;
                $name { $($field: $field.relife()),* }
            }
        })*
    };
}

each_field!(
    Remittance {
        control_number,
        implementation,
        payment,
        trace,
        currency,
        references,
        dates,
        payer,
        payee,
        header_numbers,
        claims,
        provider_adjustments,
        claim_count,
        claims_paid_total,
        segment_count
    },
    Payment {
        handling,
        amount,
        credit_debit,
        method,
        format,
        originating_company_id,
        date,
        segment_index,
        segment_offset
    },
    Trace {
        type_code,
        number,
        originator,
        supplemental
    },
    Party {
        entity,
        name,
        id_qualifier,
        id,
        address_lines,
        city,
        state,
        postal_code,
        references,
        contacts
    },
    Contact {
        function,
        name,
        numbers
    },
    HeaderNumber {
        number,
        summary,
        supplemental
    },
    ProviderSummary {
        provider_id,
        facility_code,
        fiscal_period_date,
        claim_count,
        total_charge,
        amounts
    },
    ClaimPayment {
        header_number,
        patient_control_number,
        status_code,
        charge,
        paid,
        patient_responsibility,
        filing_indicator,
        payer_claim_control_number,
        facility_type,
        frequency,
        drg_code,
        drg_weight,
        discharge_fraction,
        adjustments,
        names,
        inpatient,
        outpatient,
        references,
        dates,
        contacts,
        amounts,
        quantities,
        services,
        segment_index,
        segment_offset
    },
    Adjustment {
        group,
        reason,
        amount,
        quantity
    },
    Name {
        entity,
        entity_type,
        last,
        first,
        middle,
        suffix,
        id_qualifier,
        id
    },
    InpatientAdjudication {
        covered_days_or_visits,
        pps_operating_outlier,
        claim_drg_amount,
        remark_codes,
        elements
    },
    OutpatientAdjudication {
        reimbursement_rate,
        hcpcs_payable_amount,
        remark_codes,
        esrd_payment_amount,
        nonpayable_professional_component
    },
    ServicePayment {
        procedure,
        charge,
        paid,
        revenue_code,
        units,
        submitted_procedure,
        submitted_units,
        dates,
        adjustments,
        references,
        amounts,
        quantities,
        remarks,
        segment_index,
        segment_offset
    },
    Procedure {
        qualifier,
        code,
        modifiers,
        description
    },
    DateRef { qualifier, date },
    Reference { qualifier, value },
    AmountRef { qualifier, amount },
    QuantityRef {
        qualifier,
        quantity
    },
    Remark { qualifier, code },
    ProviderAdjustment {
        provider_id,
        fiscal_period_date,
        reason,
        reference,
        amount,
        segment_index
    },
);

impl<'b> Relife<'b> for Era835Builder<'_> {
    type Out = Era835Builder<'b>;
    /// The builder with every text it holds owned: what the windowed reader
    /// carries past the end of a window (the set's header, the open claim and
    /// the claim buffers). Nothing is pending delivery between segments.
    fn relife(self) -> Era835Builder<'b> {
        let Era835Builder {
            reader,
            problems,
            spill,
        } = self;
        let SetReader {
            r,
            state,
            slots,
            cur,
            lines,
            in_claim,
            ready,
            delivery,
            finished,
            seen_bpr,
            seen_payer,
            seen_payee,
            last_index,
            last_offset,
        } = reader;
        Era835Builder {
            reader: SetReader {
                r: r.relife(),
                state,
                slots: slots.map(Relife::relife),
                cur,
                lines,
                in_claim,
                ready,
                delivery,
                finished: finished.relife(),
                seen_bpr,
                seen_payer,
                seen_payee,
                last_index,
                last_offset,
            },
            problems,
            spill,
        }
    }
}

impl<'b> Relife<'b> for Era835Check<'_> {
    type Out = Era835Check<'b>;
    /// The check with its builder's text owned (see [`Era835Builder`]'s).
    fn relife(self) -> Era835Check<'b> {
        let Era835Check { builder, balance } = self;
        Era835Check {
            builder: builder.relife(),
            balance,
        }
    }
}
