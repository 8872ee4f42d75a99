//! Export of a filtered range: CSV with a header row, or a JSON array. Records hold no secret
//! (the client key only as alias and hash, the failure summary redacted), so an export is safe
//! to hand around.

use std::io::Write;

use super::{Filter, RecordStore, StoreError};

/// The export's columns: the row id, then the table's columns with the time as RFC 3339.
pub fn csv_header() -> Vec<&'static str> {
    std::iter::once("id")
        .chain(super::schema::COLUMNS.iter().map(|c| if *c == "ts_ms" { "timestamp" } else { c }))
        .collect()
}

impl RecordStore {
    pub fn export_csv(&self, filter: &Filter, out: impl Write) -> Result<(), StoreError> {
        let mut writer = csv::Writer::from_writer(out);
        let mut failed = None;
        let mut write = |fields: Vec<String>| {
            if failed.is_none()
                && let Err(error) = writer.write_record(&fields)
            {
                failed = Some(error);
            }
        };
        write(csv_header().into_iter().map(str::to_owned).collect());
        self.each(filter, |stored| {
            let r = &stored.record;
            write(vec![
                stored.id.to_string(),
                r.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                r.request_id.clone(),
                r.client_key.clone(),
                r.client_key_hash.clone(),
                r.requested_model.clone(),
                r.upstream_model.clone(),
                r.provider.clone(),
                r.auth_index.clone(),
                r.account.clone(),
                r.endpoint.clone(),
                r.dialect_in.clone(),
                r.dialect_out.clone(),
                r.stream.to_string(),
                r.status.to_string(),
                stored.failed.to_string(),
                r.latency_ms.to_string(),
                r.ttfb_ms.map(|t| t.to_string()).unwrap_or_default(),
                r.tokens.input.to_string(),
                r.tokens.output.to_string(),
                r.tokens.cached.to_string(),
                r.tokens.cache_creation.to_string(),
                r.tokens.reasoning.to_string(),
                r.tokens.estimated.to_string(),
                r.attempts.to_string(),
                r.failure.clone().unwrap_or_default(),
            ]);
        })?;
        if let Some(error) = failed {
            return Err(StoreError::Io(error.into()));
        }
        writer.flush()?;
        Ok(())
    }

    pub fn export_json(&self, filter: &Filter) -> Result<Vec<u8>, StoreError> {
        let mut rows = Vec::new();
        self.each(filter, |stored| rows.push(stored))?;
        Ok(serde_json::to_vec(&rows).unwrap_or_else(|_| b"[]".to_vec()))
    }
}
