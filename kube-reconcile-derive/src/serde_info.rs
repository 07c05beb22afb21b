//! Reading the few `#[serde(...)]` keys that change the JSON shape (names, tagging,
//! flattening). Anything else is skipped; serde itself reports malformed attributes.

use syn::{Attribute, LitStr, meta::ParseNestedMeta};

#[derive(Default)]
pub struct SerdeAttrs {
    pub rename: Option<String>,
    pub rename_all: Option<String>,
    pub tag: Option<String>,
    pub content: Option<String>,
    pub untagged: bool,
    pub flatten: bool,
    pub skip: bool,
    /// `default` or `default = "path"`: the value may be absent from the JSON.
    pub default: bool,
}

pub fn read(attrs: &[Attribute]) -> SerdeAttrs {
    let mut out = SerdeAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        // Errors are serde's to report; a half-read attribute only loses hints here.
        let _ = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match key.as_str() {
                "rename" if meta.input.peek(syn::Token![=]) => out.rename = Some(string(&meta)?),
                "rename_all" if meta.input.peek(syn::Token![=]) => {
                    out.rename_all = Some(string(&meta)?)
                }
                "tag" => out.tag = Some(string(&meta)?),
                "content" => out.content = Some(string(&meta)?),
                "untagged" => out.untagged = true,
                "flatten" => out.flatten = true,
                "skip" => out.skip = true,
                "default" => {
                    out.default = true;
                    skip(&meta)?
                }
                _ => skip(&meta)?,
            }
            Ok(())
        });
    }
    out
}

fn string(meta: &ParseNestedMeta) -> syn::Result<String> {
    Ok(meta.value()?.parse::<LitStr>()?.value())
}

fn skip(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|m| skip(&m))?;
    }
    Ok(())
}

/// The JSON name of a field, after `rename` / the container's `rename_all`.
pub fn json_name(ident: &str, field: &SerdeAttrs, container: &SerdeAttrs) -> String {
    let ident = ident.strip_prefix("r#").unwrap_or(ident);
    if let Some(r) = &field.rename {
        return r.clone();
    }
    let words: Vec<String> = ident
        .split('_')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let cap = |w: &String| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    match container.rename_all.as_deref() {
        Some("camelCase") => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { w.clone() } else { cap(w) })
            .collect(),
        Some("PascalCase") => words.iter().map(cap).collect(),
        Some("kebab-case") => words.join("-"),
        Some("SCREAMING_SNAKE_CASE") => words.join("_").to_uppercase(),
        Some("SCREAMING-KEBAB-CASE") => words.join("-").to_uppercase(),
        Some("UPPERCASE") => ident.to_uppercase(),
        Some("lowercase") => ident.to_lowercase(),
        _ => ident.to_owned(),
    }
}
