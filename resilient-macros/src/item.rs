//! The annotated function: read it, and check that it has a shape the attribute can rewrite.

use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned as _;
use syn::{
    Attribute, Block, Expr, FnArg, GenericArgument, Local, Pat, PathArguments, ReceiverKind,
    ReturnType, Stmt, Token, Type, TypeParamBound, Visibility,
};

/// A free function, a method, or a trait method with or without a default body.
pub(crate) struct Function {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: syn::Signature,
    /// Inner attributes at the top of the body (`#![allow(..)]`), kept there on the rewrite.
    pub(crate) inner_attrs: Vec<Attribute>,
    pub(crate) body: Option<Block>,
    pub(crate) semi: Option<Token![;]>,
}

impl Parse for Function {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: syn::Signature = input.parse()?;
        let mut inner_attrs = Vec::new();
        let (body, semi) = if input.peek(Token![;]) {
            (None, Some(input.parse()?))
        } else {
            let content;
            let brace_token = syn::braced!(content in input);
            inner_attrs = content.call(Attribute::parse_inner)?;
            let stmts = content.call(Block::parse_within)?;
            (Some(Block { brace_token, stmts }), None)
        };
        Ok(Function {
            attrs,
            vis,
            sig,
            inner_attrs,
            body,
            semi,
        })
    }
}

/// Where the body to retry is, and the type it returns.
pub(crate) enum Shape {
    /// `async fn f(..) -> R { body }`.
    Async { output: Type },
    /// A method that `#[async_trait]` has already rewritten, returning
    /// `Pin<Box<dyn Future<Output = R> + Send + 'async_trait>>`; see [`boxed_body`].
    Boxed { output: Type },
}

impl Shape {
    pub(crate) fn output(&self) -> &Type {
        match self {
            Shape::Async { output } | Shape::Boxed { output } => output,
        }
    }
}

/// Checks the signature and tells where the body is, or says what to change.
pub(crate) fn shape(function: &Function) -> syn::Result<Shape> {
    let sig = &function.sig;
    if function.body.is_none() {
        return Err(syn::Error::new(
            sig.span(),
            "`#[resilient]` needs the function's body: put it on the method in each `impl`, \
             or give this trait method a default body",
        ));
    }

    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        let by_reference = match &receiver.kind {
            ReceiverKind::Reference(..) => true,
            ReceiverKind::Typed(_, ty) => matches!(**ty, Type::Reference(_)),
            _ => false,
        };
        if !by_reference {
            let message = match &receiver.kind {
                ReceiverKind::Typed(..) => {
                    "`#[resilient]` cannot retry a method whose `self` is not a plain reference \
                     (`Pin<&mut Self>`, `Box<Self>`, ...), because the first attempt would move \
                     it: take `&self` or `&mut self`"
                }
                _ => {
                    "`#[resilient]` cannot retry a method that takes `self` by value, because \
                     the first attempt would consume it: take `&self` or `&mut self`"
                }
            };
            return Err(syn::Error::new(receiver.span(), message));
        }
    }

    let shape = match (&sig.asyncness, &sig.output) {
        (Some(_), ReturnType::Type(_, output)) => Shape::Async {
            output: (**output).clone(),
        },
        (None, ReturnType::Type(_, output)) if boxed_body(function).is_some() => {
            match boxed_future_output(output) {
                Some(output) => Shape::Boxed { output },
                None => return Err(not_async(sig)),
            }
        }
        (None, _) => return Err(not_async(sig)),
        (Some(_), ReturnType::Default) => {
            return Err(syn::Error::new(
                sig.ident.span(),
                format!(
                    "`#[resilient]` needs a function that returns `Result<T, E>`, so it can tell \
                     success from failure: declare `fn {}(..) -> Result<T, E>`",
                    sig.ident
                ),
            ));
        }
    };

    if !is_result(shape.output()) {
        return Err(syn::Error::new(
            shape.output().span(),
            "`#[resilient]` needs a function that returns `Result<T, E>`, so it can tell \
             success from failure; this type is not spelled as a `Result`",
        ));
    }
    Ok(shape)
}

fn not_async(sig: &syn::Signature) -> syn::Error {
    syn::Error::new(
        sig.fn_token.span(),
        "`#[resilient]` works on `async fn` only, because retries wait between attempts: \
         write `async fn`",
    )
}

/// Whether `ty` is spelled as a result: the last segment of its path is named `Result`, as in
/// `Result<T, E>`, `std::io::Result<T>` or `anyhow::Result<T>`.
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Result"),
        Type::Paren(inner) => is_result(&inner.elem),
        Type::Group(inner) => is_result(&inner.elem),
        _ => false,
    }
}

/// `R` in `Pin<Box<dyn Future<Output = R> + ..>>`, the return type `#[async_trait]` writes.
fn boxed_future_output(ty: &Type) -> Option<Type> {
    let pin = last_segment_args(ty, "Pin")?;
    let boxed = last_segment_args(first_type(pin)?, "Box")?;
    let Type::TraitObject(object) = first_type(boxed)? else {
        return None;
    };
    object.bounds.iter().find_map(|bound| match bound {
        TypeParamBound::Trait(bound) => {
            let future = bound.path.segments.last()?;
            if future.ident != "Future" {
                return None;
            }
            let PathArguments::AngleBracketed(args) = &future.arguments else {
                return None;
            };
            args.args.iter().find_map(|arg| match arg {
                GenericArgument::AssocType(assoc) if assoc.ident == "Output" => {
                    Some(assoc.ty.clone())
                }
                _ => None,
            })
        }
        _ => None,
    })
}

fn last_segment_args<'a>(
    ty: &'a Type,
    name: &str,
) -> Option<&'a syn::AngleBracketedGenericArguments> {
    let Type::Path(path) = ty else { return None };
    let segment = path.path.segments.last()?;
    match &segment.arguments {
        PathArguments::AngleBracketed(args) if segment.ident == name => Some(args),
        _ => None,
    }
}

fn first_type(args: &syn::AngleBracketedGenericArguments) -> Option<&Type> {
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// The statements inside `Box::pin(async move { .. })`, the tail of a body that
/// `#[async_trait]` has rewritten.
///
/// Input (what `#[async_trait]` makes of `async fn f(&self, x: String) -> R { body }`):
///     fn f<'life0, 'async_trait>(&'life0 self, x: String)
///         -> Pin<Box<dyn Future<Output = R> + Send + 'async_trait>>
///     {
///         Box::pin(async move {
///             if let Some(__ret) = None::<R> { return __ret; }
///             let __self = self;
///             let x = x;
///             let __ret: R = { body };
///             __ret
///         })
///     }
pub(crate) fn boxed_body(function: &Function) -> Option<&Vec<Stmt>> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = function.body.as_ref()?.stmts.last() else {
        return None;
    };
    let Expr::Path(callee) = &*call.func else {
        return None;
    };
    let names: Vec<String> = callee
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !names.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    match call.args.first() {
        Some(Expr::Async(block)) if block.capture.is_some() => Some(&block.block.stmts),
        _ => None,
    }
}

/// Whether `local` is `let __ret: R = { body };`, the line of an `#[async_trait]` body that
/// holds the user's code.
pub(crate) fn is_boxed_ret(local: &Local) -> bool {
    let Pat::Type(typed) = &local.pat else {
        return false;
    };
    let Pat::Ident(ident) = &*typed.pat else {
        return false;
    };
    ident.ident == "__ret"
        && matches!(
            local.init.as_ref().map(|init| &*init.expr),
            Some(Expr::Block(_))
        )
}
