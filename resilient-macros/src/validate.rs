//! Checks on the values and their combinations, once every key has been read.

use proc_macro2::Span;
use syn::LitStr;

use crate::args::{Args, Spanned};
use crate::duration;

/// More retries than this is a mistake rather than a policy: with exponential backoff capped at
/// a minute, 100 retries already wait for well over an hour.
pub(crate) const MAX_RETRIES: u64 = 100;

/// `RetryPolicy::new()`'s delays, against which a lone `base_delay` or `max_delay` is checked
/// when no named policy supplies the other one at run time.
const DEFAULT_BASE_DELAY: u64 = 1_000_000_000;
const DEFAULT_MAX_DELAY: u64 = 60_000_000_000;

/// Every problem with `args`, combined into one error.
pub(crate) fn validate(args: &Args) -> syn::Result<()> {
    let mut problems = Vec::new();

    if let Some(retries) = &args.retries
        && retries.value > MAX_RETRIES
    {
        problems.push(syn::Error::new(
            retries.span,
            format!(
                "`retries = {}` is above the maximum of {MAX_RETRIES}; \
                 to bound a call by time instead, set `deadline`",
                retries.value
            ),
        ));
    }

    let above_zero = [
        (
            "timeout",
            &args.timeout,
            "remove it for no per-attempt limit",
        ),
        (
            "deadline",
            &args.deadline,
            "remove it for no limit on the whole call",
        ),
        (
            "max_delay",
            &args.max_delay,
            "use `base_delay = \"0s\"` for retries without waiting",
        ),
    ];
    for (key, value, fix) in above_zero {
        if let Some(Spanned { value: 0, span }) = value {
            problems.push(syn::Error::new(
                *span,
                format!("`{key}` must be above zero; {fix}"),
            ));
        }
    }

    if let Some(problem) = delay_order(args) {
        problems.push(problem);
    }

    for (key, name) in [("breaker", &args.breaker), ("policy", &args.policy)] {
        if let Some(name) = name
            && name.value().trim().is_empty()
        {
            problems.push(empty_name(key, name));
        }
    }

    let mut problems = problems.into_iter();
    match problems.next() {
        None => Ok(()),
        Some(mut first) => {
            first.extend(problems);
            Err(first)
        }
    }
}

/// `max_delay` below `base_delay`, where both are known at compile time: written on the
/// attribute, or one written and the other the default. A named policy supplies the missing one
/// at run time, so nothing can be said then.
fn delay_order(args: &Args) -> Option<syn::Error> {
    let (base, max, span): (u64, u64, Span) = match (&args.base_delay, &args.max_delay) {
        (Some(base), Some(max)) => (base.value, max.value, max.span),
        _ if args.policy.is_some() => return None,
        (Some(base), None) => (base.value, DEFAULT_MAX_DELAY, base.span),
        (None, Some(max)) => (DEFAULT_BASE_DELAY, max.value, max.span),
        (None, None) => return None,
    };
    if max >= base {
        return None;
    }
    let message = match (&args.base_delay, &args.max_delay) {
        (Some(_), Some(_)) => format!(
            "`max_delay` ({}) is below `base_delay` ({}); raise `max_delay` or lower `base_delay`",
            duration::display(max),
            duration::display(base)
        ),
        (Some(_), None) => format!(
            "`base_delay` ({}) is above the default `max_delay` ({}); also set `max_delay`",
            duration::display(base),
            duration::display(max)
        ),
        _ => format!(
            "`max_delay` ({}) is below the default `base_delay` ({}); also set `base_delay`",
            duration::display(max),
            duration::display(base)
        ),
    };
    Some(syn::Error::new(span, message))
}

fn empty_name(key: &str, name: &LitStr) -> syn::Error {
    let example = if key == "breaker" {
        "openai"
    } else {
        "default"
    };
    syn::Error::new(
        name.span(),
        format!("the {key} name is empty; name it, like `{key} = \"{example}\"`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(tokens: &str) -> Result<(), String> {
        let args: Args = syn::parse_str(tokens).map_err(|e| format!("parse: {e}"))?;
        validate(&args).map_err(|e| e.to_string())
    }

    #[test]
    fn sane_settings_pass() {
        assert_eq!(check(""), Ok(()));
        assert_eq!(
            check("retries = 100, base_delay = \"0s\", max_delay = \"1s\""),
            Ok(())
        );
        assert_eq!(check("policy = \"p\", max_delay = \"1ms\""), Ok(()));
    }

    #[test]
    fn too_many_retries() {
        assert!(
            check("retries = 101")
                .unwrap_err()
                .contains("maximum of 100")
        );
    }

    #[test]
    fn zero_limits() {
        assert!(
            check("timeout = \"0s\"")
                .unwrap_err()
                .starts_with("`timeout` must be above zero")
        );
        assert!(
            check("deadline = \"0ms\"")
                .unwrap_err()
                .starts_with("`deadline` must be")
        );
        assert!(check("max_delay = \"0s\", base_delay = \"0s\"").is_err());
    }

    #[test]
    fn delays_out_of_order() {
        assert_eq!(
            check("base_delay = \"2s\", max_delay = \"1s\"").unwrap_err(),
            "`max_delay` (1s) is below `base_delay` (2s); raise `max_delay` or lower `base_delay`"
        );
        assert!(
            check("max_delay = \"500ms\"")
                .unwrap_err()
                .contains("default `base_delay` (1s)")
        );
        assert!(
            check("base_delay = \"2m\"")
                .unwrap_err()
                .contains("default `max_delay` (60s)")
        );
    }

    #[test]
    fn empty_names() {
        assert_eq!(
            check("breaker = \" \"").unwrap_err(),
            "the breaker name is empty; name it, like `breaker = \"openai\"`"
        );
        assert!(check("policy = \"\"").is_err());
    }
}
