//! Which by-value arguments the body may consume, and so need a fresh clone for every attempt.
//!
//! The rule is syntactic, because a macro sees no types: a binding is left alone when every
//! mention of it in the body sits directly under `&` or `&mut` (through field accesses, as in
//! `&request.headers`). Any other mention may move it: a plain use, a method call (which may
//! take `self`), a closure, or an appearance inside a macro's tokens, which cannot be read.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::{Block, Expr, Ident, Item, Macro, Pat};

/// A binding introduced by an argument pattern, as the body sees it.
#[derive(Clone)]
pub(crate) struct Binding {
    pub(crate) ident: Ident,
    pub(crate) mutable: bool,
    /// Where a missing `Clone` is reported: the argument in the signature.
    pub(crate) span: Span,
    /// The declared type, when the binding is the whole argument (`name: Type`).
    pub(crate) ty: Option<syn::Type>,
}

/// The bindings of an argument pattern, in order. `ref` bindings are left out: they are
/// references already.
pub(crate) fn bindings(pat: &Pat, out: &mut Vec<Binding>) {
    match pat {
        Pat::Ident(binding) => {
            if binding.by_ref.is_none() {
                out.push(Binding {
                    ident: binding.ident.clone(),
                    mutable: binding.mutability.is_some(),
                    span: binding.ident.span(),
                    ty: None,
                });
            }
            if let Some((_, sub)) = &binding.subpat {
                bindings(sub, out);
            }
        }
        Pat::Paren(inner) => bindings(&inner.pat, out),
        Pat::Type(typed) => bindings(&typed.pat, out),
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|p| bindings(p, out)),
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Slice(slice) => slice.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Struct(fields) => fields.fields.iter().for_each(|f| bindings(&f.pat, out)),
        // References, literals, wildcards and the rest bind nothing that could be consumed.
        _ => {}
    }
}

/// The names among `candidates` that `body` mentions other than directly under a borrow.
pub(crate) fn consumed(body: &Block, candidates: &[Binding]) -> BTreeSet<String> {
    let mut finder = Mentions {
        names: candidates.iter().map(|b| b.ident.to_string()).collect(),
        found: BTreeSet::new(),
    };
    finder.visit_block(body);
    finder.found
}

struct Mentions {
    names: BTreeSet<String>,
    found: BTreeSet<String>,
}

impl Mentions {
    fn note(&mut self, ident: &Ident) {
        let name = ident.to_string();
        if self.names.contains(&name) {
            self.found.insert(name);
        }
    }

    fn note_tokens(&mut self, tokens: &TokenStream) {
        for token in tokens.clone() {
            match token {
                TokenTree::Ident(ident) => self.note(&ident),
                TokenTree::Group(group) => self.note_tokens(&group.stream()),
                TokenTree::Punct(_) | TokenTree::Literal(_) => {}
            }
        }
    }
}

impl<'ast> Visit<'ast> for Mentions {
    fn visit_expr(&mut self, expr: &'ast Expr) {
        match expr {
            Expr::Path(path) if path.qself.is_none() => {
                if let Some(ident) = path.path.get_ident() {
                    self.note(ident);
                }
            }
            Expr::Reference(borrow) => {
                // `&x` and `&x.field.inner` borrow `x`; anything else under the `&` is visited
                // as usual.
                let mut place = &*borrow.expr;
                loop {
                    match place {
                        Expr::Field(field) => place = &field.base,
                        Expr::Paren(paren) => place = &paren.expr,
                        Expr::Group(group) => place = &group.expr,
                        _ => break,
                    }
                }
                let borrows_an_argument = matches!(
                    place,
                    Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some()
                );
                if !borrows_an_argument {
                    visit::visit_expr(self, expr);
                }
            }
            _ => visit::visit_expr(self, expr),
        }
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        self.note_tokens(&mac.tokens);
    }

    fn visit_item(&mut self, _: &'ast Item) {
        // A nested item cannot see the function's arguments.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &str, body: &str) -> Vec<String> {
        let pats: syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]> =
            syn::parse::Parser::parse_str(syn::punctuated::Punctuated::parse_terminated, args)
                .unwrap();
        let mut candidates = Vec::new();
        for arg in &pats {
            if let syn::FnArg::Typed(typed) = arg {
                bindings(&typed.pat, &mut candidates);
            }
        }
        let body: Block = syn::parse_str(body).unwrap();
        consumed(&body, &candidates).into_iter().collect()
    }

    #[test]
    fn borrows_need_no_clone() {
        assert!(
            check(
                "s: String",
                "{ takes(&s); takes(&mut s); takes(&s.field.x) }"
            )
            .is_empty()
        );
        assert!(check("s: String", "{ fn inner(s: String) -> String { s } }").is_empty());
    }

    #[test]
    fn moves_and_method_calls_need_a_clone() {
        assert_eq!(check("s: String, n: u32", "{ consume(s); &n }"), ["s"]);
        assert_eq!(check("s: String", "{ s.len() }"), ["s"]);
        assert_eq!(check("s: String", "{ let f = move || s; }"), ["s"]);
        assert_eq!(check("s: String", "{ &s[..].to_owned() }"), ["s"]);
        assert_eq!(check("s: String", "{ Request { s } }"), ["s"]);
    }

    #[test]
    fn macro_tokens_count_as_a_use() {
        assert_eq!(check("s: String", "{ vec![s] }"), ["s"]);
        assert!(check("s: String", "{ println!(\"{s}\") }").is_empty());
    }

    #[test]
    fn destructured_bindings_are_tracked_one_by_one() {
        assert_eq!(
            check("(a, mut b): (String, Vec<u8>)", "{ &a; b.push(1) }"),
            ["b"]
        );
        assert_eq!(
            check("Pair { left, right: ref r }: Pair", "{ left; r }"),
            ["left"]
        );
    }
}
