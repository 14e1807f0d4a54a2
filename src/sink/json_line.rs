//! A faster way to write one record as a JSON line, byte-identical to `serde_json`.
//!
//! Output records are flat structs of about a hundred fields. `serde_json` escapes every
//! field name byte by byte; here the names of a struct's fields (Rust identifiers, which
//! never need escaping) are copied as they are, and every *value* is still written by
//! `serde_json` itself, so numbers, strings and nested values come out exactly as
//! `serde_json::to_string` would write them. Maps (from `#[serde(flatten)]`) are
//! supported the same way: their keys and values go through `serde_json`.

use serde::ser::{self, Impossible, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};

/// Appends `value` as one line of JSON (without the newline) to `out`.
pub fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
    value.serialize(Line { out }).map_err(|e| e.0)
}

/// An error while writing a line.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        Error(msg.to_string())
    }
}

fn value<T: Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    v.serialize(&mut serde_json::Serializer::new(out))
        .map_err(|e| Error(e.to_string()))
}

/// The top level: a struct or a map; anything else is written by `serde_json` whole.
struct Line<'a> {
    out: &'a mut Vec<u8>,
}

/// A struct or map being written.
pub struct Fields<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Fields<'_> {
    #[inline]
    fn separator(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.out.push(b',');
        }
    }
}

/// A bare value at the top level is written as a field's value would be.
macro_rules! as_value {
    ($($name:ident: $t:ty),* $(,)?) => {
        $(fn $name(self, v: $t) -> Result<(), Error> {
            ser::Serializer::$name(Value { out: self.out }, v)
        })*
    };
}

impl<'a> ser::Serializer for Line<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Fields<'a>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Impossible<(), Error>;

    as_value!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_f32: f32,
        serialize_f64: f64,
        serialize_char: char,
        serialize_str: &str,
        serialize_bytes: &[u8],
        serialize_unit_struct: &'static str,
    );

    fn serialize_none(self) -> Result<(), Error> {
        Value { out: self.out }.null()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Value { out: self.out }.null()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        Value { out: self.out }.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        ser::Serializer::serialize_newtype_variant(Value { out: self.out }, name, index, variant, v)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(Error("a JSON line must be an object".into()))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(Error("a JSON line must be an object".into()))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(Error("a JSON line must be an object".into()))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error("a JSON line must be an object".into()))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        self.out.push(b'{');
        Ok(Fields {
            out: self.out,
            first: true,
        })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        self.out.push(b'{');
        Ok(Fields {
            out: self.out,
            first: true,
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error("a JSON line must be an object".into()))
    }
}

impl ser::SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.separator();
        // Field names are Rust identifiers or plain `rename`s: nothing to escape.
        debug_assert!(key.bytes().all(|b| b != b'"' && b != b'\\' && b >= 0x20));
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        v.serialize(Value { out: self.out })
    }

    fn end(self) -> Result<(), Error> {
        self.out.push(b'}');
        Ok(())
    }
}

impl ser::SerializeMap for Fields<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.separator();
        key.serialize(Key { out: self.out })?;
        self.out.push(b':');
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        v.serialize(Value { out: self.out })
    }

    fn end(self) -> Result<(), Error> {
        self.out.push(b'}');
        Ok(())
    }
}

/// A field's value, written as `serde_json::to_string` would: numbers and booleans with
/// `serde_json`'s own formatter, strings that need escaping by `serde_json`, arrays and
/// objects element by element.
struct Value<'a> {
    out: &'a mut Vec<u8>,
}

macro_rules! formatted {
    ($($name:ident: $t:ty => $write:ident),* $(,)?) => {
        $(#[inline]
        fn $name(self, v: $t) -> Result<(), Error> {
            CompactFormatter.$write(self.out, v).map_err(io_error)
        })*
    };
}

fn io_error(e: std::io::Error) -> Error {
    Error(e.to_string())
}

impl Value<'_> {
    #[inline]
    fn null(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    /// A string: copied between quotes when nothing in it needs escaping (`serde_json`
    /// escapes only `"`, `\\` and control characters), else escaped by `serde_json`.
    #[inline]
    fn string(self, v: &str) -> Result<(), Error> {
        if v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.out.reserve(v.len() + 2);
            self.out.push(b'"');
            self.out.extend_from_slice(v.as_bytes());
            self.out.push(b'"');
            Ok(())
        } else {
            value(v, self.out)
        }
    }
}

impl<'a> ser::Serializer for Value<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Nested<'a>;
    type SerializeTuple = Nested<'a>;
    type SerializeTupleStruct = Nested<'a>;
    type SerializeTupleVariant = Nested<'a>;
    type SerializeMap = Nested<'a>;
    type SerializeStruct = Nested<'a>;
    type SerializeStructVariant = Nested<'a>;

    formatted!(
        serialize_bool: bool => write_bool,
        serialize_i8: i8 => write_i8,
        serialize_i16: i16 => write_i16,
        serialize_i32: i32 => write_i32,
        serialize_i64: i64 => write_i64,
        serialize_u8: u8 => write_u8,
        serialize_u16: u16 => write_u16,
        serialize_u32: u32 => write_u32,
        serialize_u64: u64 => write_u64,
    );

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if v.is_finite() {
            CompactFormatter.write_f32(self.out, v).map_err(io_error)
        } else {
            self.null()
        }
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if v.is_finite() {
            CompactFormatter.write_f64(self.out, v).map_err(io_error)
        } else {
            self.null()
        }
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        value(v, self.out)
    }
    #[inline]
    fn serialize_none(self) -> Result<(), Error> {
        self.null()
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.null()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.null()
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        Value { out: self.out }.string(variant)?;
        self.out.push(b':');
        v.serialize(Value { out: self.out })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, b"[", b"]"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, b"[", b"]"))
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, b"[", b"]"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Nested<'a>, Error> {
        self.out.push(b'{');
        Value { out: self.out }.string(variant)?;
        Ok(Nested::open(self.out, b":[", b"]}"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, b"{", b"}"))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Nested<'a>, Error> {
        Ok(Nested::open(self.out, b"{", b"}"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Nested<'a>, Error> {
        self.out.push(b'{');
        Value { out: self.out }.string(variant)?;
        Ok(Nested::open(self.out, b":{", b"}}"))
    }
}

/// An array or object inside a field's value.
pub struct Nested<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    close: &'static [u8],
}

impl<'a> Nested<'a> {
    fn open(out: &'a mut Vec<u8>, open: &[u8], close: &'static [u8]) -> Nested<'a> {
        out.extend_from_slice(open);
        Nested {
            out,
            first: true,
            close,
        }
    }

    #[inline]
    fn separator(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.out.push(b',');
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.separator();
        v.serialize(Value { out: self.out })
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) -> Result<(), Error> {
        self.separator();
        Value { out: self.out }.string(key)?;
        self.out.push(b':');
        v.serialize(Value { out: self.out })
    }

    fn close(self) -> Result<(), Error> {
        self.out.extend_from_slice(self.close);
        Ok(())
    }
}

macro_rules! sequence {
    ($($tr:ident :: $f:ident),* $(,)?) => {
        $(impl ser::$tr for Nested<'_> {
            type Ok = ();
            type Error = Error;
            fn $f<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.element(v)
            }
            fn end(self) -> Result<(), Error> {
                self.close()
            }
        })*
    };
}

sequence!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

macro_rules! object {
    ($($tr:ident),* $(,)?) => {
        $(impl ser::$tr for Nested<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Error> {
                self.field(key, v)
            }
            fn end(self) -> Result<(), Error> {
                self.close()
            }
        })*
    };
}

object!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Nested<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.separator();
        key.serialize(Key { out: self.out })?;
        self.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        v.serialize(Value { out: self.out })
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// A map key: a string, or a number or bool written as a string (as `serde_json` does).
struct Key<'a> {
    out: &'a mut Vec<u8>,
}

macro_rules! quoted {
    ($($name:ident: $t:ty),* $(,)?) => {
        $(fn $name(self, v: $t) -> Result<(), Error> {
            value(&v.to_string(), self.out)
        })*
    };
}

fn not_a_key<T>() -> Result<T, Error> {
    Err(Error("map keys must be strings, numbers or bools".into()))
}

impl ser::Serializer for Key<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    quoted!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_char: char,
    );

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        value(v, self.out)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        value(variant, self.out)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Error> {
        not_a_key()
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Error> {
        not_a_key()
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        not_a_key()
    }
    fn serialize_none(self) -> Result<(), Error> {
        not_a_key()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _v: &T) -> Result<(), Error> {
        not_a_key()
    }
    fn serialize_unit(self) -> Result<(), Error> {
        not_a_key()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        not_a_key()
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _v: &T,
    ) -> Result<(), Error> {
        not_a_key()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        not_a_key()
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        not_a_key()
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        not_a_key()
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        not_a_key()
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        not_a_key()
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        not_a_key()
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        not_a_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Reason {
        EndOfInput,
    }

    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Kind {
        Overlap { range: (u32, u32), same: bool },
        Timeout,
    }

    #[derive(Serialize)]
    struct Inner {
        name: &'static str,
        v: f64,
    }

    #[derive(Serialize)]
    enum Shape {
        Pair(u8, i8),
        Named { a: bool, b: Option<f32> },
        Wrapped(Vec<u16>),
    }

    #[derive(Serialize)]
    struct Newtype(i64);

    #[derive(Serialize)]
    struct Rec {
        ts: String,
        n: u64,
        neg: i32,
        x: f64,
        tiny: f64,
        big: f64,
        nan: f64,
        opt: Option<u64>,
        none: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        reason: Reason,
        s: &'static str,
        list: Vec<Inner>,
        empty: Vec<Inner>,
        shapes: Vec<Shape>,
        map: std::collections::BTreeMap<u32, Vec<(u8, &'static str)>>,
        c: char,
        ctrl: &'static str,
        unicode: &'static str,
        f: f32,
        neg_zero: f64,
        inf: f32,
        min: i64,
        yes: bool,
        unit: (),
        newtype: Newtype,
        #[serde(flatten)]
        kind: Kind,
    }

    #[test]
    fn byte_identical_to_serde_json() {
        for kind in [
            Kind::Overlap {
                range: (8, 16),
                same: false,
            },
            Kind::Timeout,
        ] {
            let r = Rec {
                ts: "2015-06-16T08:29:54.683939000Z".into(),
                n: u64::MAX,
                neg: -7,
                x: 310.571_428_571_428_56,
                tiny: 1e-7,
                big: 1e21,
                nan: f64::NAN,
                opt: Some(3),
                none: None,
                skipped: None,
                reason: Reason::EndOfInput,
                s: "quote \" backslash \\ tab \t",
                list: vec![Inner { name: "a", v: 0.5 }],
                empty: Vec::new(),
                shapes: vec![
                    Shape::Pair(1, -1),
                    Shape::Named {
                        a: true,
                        b: Some(0.1),
                    },
                    Shape::Named { a: false, b: None },
                    Shape::Wrapped(vec![1, 2]),
                ],
                map: [(7, vec![(1, "x\ny")]), (9, vec![])].into_iter().collect(),
                c: '"',
                ctrl: "bell \u{7} del \u{7f} nul \u{0}",
                unicode: "überall ✓",
                f: 3.3,
                neg_zero: -0.0,
                inf: f32::INFINITY,
                min: i64::MIN,
                yes: true,
                unit: (),
                newtype: Newtype(-5),
                kind,
            };
            let mut fast = Vec::new();
            write(&r, &mut fast).expect("writes");
            let slow = serde_json::to_string(&r).expect("serializes");
            assert_eq!(String::from_utf8(fast).expect("utf8"), slow);
        }
    }

    #[test]
    fn maps_with_number_keys_match_serde_json() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(3u16, "x");
        m.insert(10u16, "y");
        let mut fast = Vec::new();
        write(&m, &mut fast).expect("writes");
        assert_eq!(
            String::from_utf8(fast).expect("utf8"),
            serde_json::to_string(&m).expect("json")
        );
    }

    #[test]
    fn a_line_must_be_an_object() {
        let mut out = Vec::new();
        assert!(write(&vec![1, 2], &mut out).is_err());
        out.clear();
        write(&5u8, &mut out).expect("a bare value is written whole");
        assert_eq!(out, b"5");
    }
}
