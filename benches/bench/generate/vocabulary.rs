//! The words the generator draws from: channels, countries, languages,
//! subjects and industries (the facets the benchmarks filter by), and the
//! pieces issuers, headlines and bodies are made of.

pub const CHANNELS: &[&str] = &[
    "Business",
    "Technology",
    "Finance",
    "Health",
    "Energy",
    "Automotive",
    "Retail",
    "Telecommunications",
    "Media",
    "Agriculture",
    "Travel",
    "Real Estate",
    "Science",
    "Education",
    "Sports",
    "Politics",
];

/// ISO 3166-1 alpha-2 codes, the busiest wires first.
pub const COUNTRIES: &[&str] = &[
    "US", "GB", "DE", "FR", "JP", "CA", "IN", "CN", "AU", "NL", "CH", "SE", "ES", "IT", "KR", "SG",
    "BR", "IE", "AZ", "AE", "MX", "ZA", "NO", "DK", "FI", "PL", "IL", "NZ", "BE", "AT", "HK", "TW",
    "SA", "TR", "NG", "KE", "EG", "AR", "CL", "ID", "TH", "VN", "PH", "MY", "PT", "CZ", "GR", "HU",
];

/// BCP-47 tags, English first.
pub const LANGUAGES: &[&str] = &[
    "en",
    "en-US",
    "en-GB",
    "de",
    "fr",
    "es",
    "ja",
    "en-CA",
    "en-AU",
    "pt-BR",
    "zh-Hans-CN",
    "it",
    "nl",
    "sv",
    "ko",
    "fr-CA",
    "de-CH",
    "es-MX",
    "pl",
    "az",
];

pub const SUBJECTS: &[&str] = &[
    "Product Launch",
    "Earnings",
    "Partnerships",
    "Mergers & Acquisitions",
    "Appointments",
    "Funding",
    "Awards",
    "Research",
    "Sustainability",
    "Dividends",
    "Legal",
    "Events",
    "Contracts",
    "Expansion",
];

pub const INDUSTRIES: &[&str] = &[
    "Software",
    "Banking",
    "Pharmaceuticals",
    "Semiconductors",
    "Renewable Energy",
    "Oil & Gas",
    "Automotive",
    "Retail",
    "Telecom",
    "Insurance",
    "Biotechnology",
    "Aerospace",
    "Food & Beverage",
    "Mining",
    "Logistics",
    "Hospitality",
    "Construction",
    "Chemicals",
];

pub const EXCHANGES: &[&str] = &[
    "NASDAQ", "NYSE", "LSE", "XETRA", "TSE", "EURONEXT", "TSX", "ASX", "SIX", "HKEX",
];

pub const NAME_HEADS: &[&str] = &[
    "North", "Blue", "Silver", "Green", "Bright", "Iron", "Stone", "River", "Summit", "Harbor",
    "Pioneer", "Crest", "Nova", "Atlas", "Vertex", "Maple", "Cedar", "Falcon", "Orion", "Lumen",
];

pub const NAME_TAILS: &[&str] = &[
    "wind", "field", "point", "bridge", "gate", "line", "wave", "peak", "works", "light", "stone",
    "path", "core", "grid", "leaf",
];

pub const NAME_KINDS: &[&str] = &[
    "Energy",
    "Systems",
    "Pharma",
    "Capital",
    "Motors",
    "Foods",
    "Networks",
    "Labs",
    "Logistics",
    "Materials",
    "Robotics",
    "Health",
];

pub const NAME_FORMS: &[&str] = &[
    "Inc.", "Corp.", "Ltd", "Group", "Holdings", "AG", "SA", "plc", "GmbH", "LLC",
];

pub const CITIES: &[&str] = &[
    "NEW YORK",
    "LONDON",
    "BERLIN",
    "PARIS",
    "TOKYO",
    "TORONTO",
    "MUMBAI",
    "SHANGHAI",
    "SYDNEY",
    "AMSTERDAM",
    "ZURICH",
    "STOCKHOLM",
    "MADRID",
    "MILAN",
    "SEOUL",
    "SINGAPORE",
    "BAKU",
    "DUBAI",
];

pub const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Laura", "Mateo", "Nadia", "Oliver", "Priya",
];

pub const LAST_NAMES: &[&str] = &[
    "Smith", "Müller", "Dubois", "Tanaka", "García", "Rossi", "Aliyev", "Kowalski", "Larsen",
    "Chen", "Patel", "Okafor", "Silva", "Novak",
];

pub const HEADLINE_VERBS: &[&str] = &[
    "Announces",
    "Launches",
    "Reports",
    "Acquires",
    "Opens",
    "Completes",
    "Expands",
    "Partners With",
    "Unveils",
    "Appoints",
    "Secures",
    "Introduces",
];

/// Nouns of the text, common ones first.
pub const NOUNS: &[&str] = &[
    "results",
    "revenue",
    "customers",
    "platform",
    "growth",
    "partnership",
    "acquisition",
    "factory",
    "battery",
    "software",
    "solar",
    "investment",
    "quarter",
    "market",
    "services",
    "network",
    "product",
    "agreement",
    "research",
    "vaccine",
    "semiconductor",
    "pipeline",
    "merger",
    "dividend",
    "funding",
    "expansion",
    "hydrogen",
    "satellite",
    "turbine",
    "warehouse",
    "cloud",
    "security",
    "outage",
    "recall",
    "subsidiary",
    "license",
    "patent",
    "trial",
    "plant",
    "fleet",
    "headquarters",
    "offering",
    "bond",
    "chipset",
    "electrolyser",
    "biosimilar",
    "exoskeleton",
    "microgrid",
    "desalination",
    "lidar",
];

pub const ADJECTIVES: &[&str] = &[
    "new",
    "record",
    "strategic",
    "global",
    "leading",
    "sustainable",
    "innovative",
    "quarterly",
    "annual",
    "digital",
    "renewable",
    "regional",
    "advanced",
    "independent",
    "autonomous",
    "clinical",
    "electric",
    "modular",
    "cryogenic",
    "photonic",
];

pub const VERBS: &[&str] = &[
    "announced",
    "expects",
    "delivered",
    "increased",
    "reported",
    "launched",
    "completed",
    "signed",
    "plans",
    "invested",
    "expanded",
    "opened",
    "acquired",
    "develops",
    "supplies",
    "recalled",
];

pub const QUARTERS: &[&str] = &["first", "second", "third", "fourth"];
