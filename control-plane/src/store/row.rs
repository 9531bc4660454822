//! Reading typed values out of `Any` rows: ids are UUID text, enums are their names.

use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::{Result, StoreError};

pub(crate) trait RowExt {
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn int32(&self, col: &str) -> Result<i32>;
    fn opt_int32(&self, col: &str) -> Result<Option<i32>>;
    fn float_opt(&self, col: &str) -> Result<Option<f64>>;
    fn flag(&self, col: &str) -> Result<bool>;
    fn id(&self, col: &str) -> Result<Uuid>;
    fn opt_id(&self, col: &str) -> Result<Option<Uuid>>;
    fn parsed<T: FromStr<Err = String>>(&self, col: &str) -> Result<T>;
}

fn corrupt(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {col}: {e}"))
}

impl RowExt for AnyRow {
    fn text(&self, col: &str) -> Result<String> {
        self.try_get(col).map_err(|e| corrupt(col, e))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.try_get(col).map_err(|e| corrupt(col, e))
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.try_get(col).map_err(|e| corrupt(col, e))
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        self.try_get(col).map_err(|e| corrupt(col, e))
    }
    fn int32(&self, col: &str) -> Result<i32> {
        let v = self.int(col)?;
        i32::try_from(v).map_err(|e| corrupt(col, e))
    }
    fn opt_int32(&self, col: &str) -> Result<Option<i32>> {
        self.opt_int(col)?
            .map(|v| i32::try_from(v).map_err(|e| corrupt(col, e)))
            .transpose()
    }
    fn float_opt(&self, col: &str) -> Result<Option<f64>> {
        self.try_get(col).map_err(|e| corrupt(col, e))
    }
    fn flag(&self, col: &str) -> Result<bool> {
        // SQLite stores booleans as integers; PostgreSQL as booleans.
        match self.try_get::<bool, _>(col) {
            Ok(b) => Ok(b),
            Err(_) => Ok(self.int(col)? != 0),
        }
    }
    fn id(&self, col: &str) -> Result<Uuid> {
        Uuid::parse_str(&self.text(col)?).map_err(|e| corrupt(col, e))
    }
    fn opt_id(&self, col: &str) -> Result<Option<Uuid>> {
        self.opt_text(col)?
            .map(|s| Uuid::parse_str(&s).map_err(|e| corrupt(col, e)))
            .transpose()
    }
    fn parsed<T: FromStr<Err = String>>(&self, col: &str) -> Result<T> {
        self.text(col)?.parse().map_err(|e: String| corrupt(col, e))
    }
}
