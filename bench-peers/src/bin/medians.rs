//! Prints the medians of the last `cargo bench --bench peers` run as a Markdown table, each
//! with its ratio to the direct call of its group.
//!
//! ```text
//! cargo run --release --bin medians [CRITERION_DIR]
//! ```
//!
//! `CRITERION_DIR` defaults to `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The benchmarks each group is compared against.
const BASELINE: &str = "direct";

struct Median {
    group: String,
    name: String,
    nanos: f64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from)
                .join("criterion")
        },
        PathBuf::from,
    );
    let mut medians = read_all(&dir)?;
    if medians.is_empty() {
        return Err(format!("no benchmark results under {}", dir.display()).into());
    }
    medians.sort_by(|a, b| {
        (&a.group, a.nanos)
            .partial_cmp(&(&b.group, b.nanos))
            .unwrap_or(std::cmp::Ordering::Equal)
    });

    println!("| group | call | median | × direct |");
    println!("| --- | --- | ---: | ---: |");
    for m in &medians {
        let direct = medians
            .iter()
            .find(|d| d.group == m.group && d.name == BASELINE)
            .map(|d| d.nanos);
        let ratio = direct.map_or_else(|| "-".to_owned(), |d| format!("{:.1}", m.nanos / d));
        println!(
            "| {} | {} | {} | {ratio} |",
            m.group,
            m.name,
            format_nanos(m.nanos)
        );
    }
    Ok(())
}

/// Every `<group>/<bench>/new` result under `dir`.
fn read_all(dir: &Path) -> Result<Vec<Median>, Box<dyn Error>> {
    let mut medians = Vec::new();
    for group in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let group = group?.path();
        if !group.is_dir() {
            continue;
        }
        for bench in fs::read_dir(&group)? {
            let new = bench?.path().join("new");
            if new.join("estimates.json").is_file() {
                medians.push(read_one(&new)?);
            }
        }
    }
    Ok(medians)
}

fn read_one(new: &Path) -> Result<Median, Box<dyn Error>> {
    let json = |file: &str| -> Result<Value, Box<dyn Error>> {
        let path = new.join(file);
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    };
    let id = json("benchmark.json")?;
    let estimates = json("estimates.json")?;
    let field = |value: &Value, key: &str| -> Result<Value, Box<dyn Error>> {
        value
            .get(key)
            .cloned()
            .ok_or_else(|| format!("{} has no `{key}`", new.display()).into())
    };
    Ok(Median {
        group: field(&id, "group_id")?
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        name: field(&id, "function_id")?
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        nanos: field(&field(&estimates, "median")?, "point_estimate")?
            .as_f64()
            .unwrap_or(f64::NAN),
    })
}

fn format_nanos(nanos: f64) -> String {
    if nanos >= 1_000.0 {
        format!("{:.2} µs", nanos / 1_000.0)
    } else {
        format!("{nanos:.1} ns")
    }
}
