"""Labelled corpus for the sensitive-input guard (openrouter_nb.privacy).

POSITIVES: (text, expected_kind) pairs; each text holds sensitive data of exactly that kind.
NEGATIVES: texts with nothing sensitive: prose, code, data and numbers that merely look like it.

Fake secrets are assembled at import time from deterministic pseudo-random characters, so no
file holds a literal that a secret scanner would mistake for a live credential. Cards and IBANs
are the well-known public test values.
"""

from __future__ import annotations

import base64
import json
import random

_B62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def fake(n: int, seed: int, alphabet: str = _B62) -> str:
    """``n`` deterministic pseudo-random characters (a fake secret body)."""
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def fake_jwt(seed: int, alg: str = "HS256") -> str:
    header = _b64url({"alg": alg, "typ": "JWT"})
    payload = _b64url({"sub": f"user-{seed}", "iat": 1788800000, "role": "admin"})
    return f"{header}.{payload}.{fake(43, seed, _B62 + '-_')}"


def _pem(kind: str, seed: int) -> str:
    body = "\n".join(fake(64, seed + i, _B62 + "+/") for i in range(4))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


OR_KEY = "sk-or-v1-" + "ab" * 32
OR_KEY2 = "sk-or-v1-" + fake(64, 11, "0123456789abcdef")
OPENAI_LEGACY = "sk-" + fake(48, 12)
OPENAI_PROJ = "sk-proj-" + fake(120, 13, _B62 + "-_")
OPENAI_SVC = "sk-svcacct-" + fake(64, 14)
ANTHROPIC = "sk-ant-api03-" + fake(93, 15, _B62 + "-_") + "AA"
AWS_ID = "AKIA" + "IOSFODNN7" + "EXAMPLE"  # the AWS documentation example
AWS_TEMP = "ASIA" + fake(16, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
AWS_SECRET = fake(40, 17, _B62 + "/+")
GH_PAT = "ghp_" + fake(36, 18)
GH_OAUTH = "gho_" + fake(36, 19)
GH_SERVER = "ghs_" + fake(36, 20)
GH_FINE = "github_pat_" + fake(22, 21) + "_" + fake(59, 22)
JWT = fake_jwt(23)
JWT_RS = fake_jwt(24, "RS256")

POSITIVES: list[tuple[str, str]] = [
    # OpenRouter keys
    (f"My key is {OR_KEY}, why does it return 401?", "openrouter_key"),
    (f'OPENROUTER_API_KEY="{OR_KEY2}"', "openrouter_key"),
    (f"curl https://openrouter.ai/api/v1/chat/completions -H 'Authorization: Bearer {OR_KEY}'",
     "openrouter_key"),
    (f'client = OpenAI(base_url="https://openrouter.ai/api/v1", api_key="{OR_KEY2}")',
     "openrouter_key"),
    (f"export OPENROUTER_API_KEY={OR_KEY}", "openrouter_key"),
    # OpenAI keys
    (f"openai.api_key = '{OPENAI_LEGACY}'", "openai_key"),
    (f"Here is my project key {OPENAI_PROJ} - can you check the quota?", "openai_key"),
    (f"OPENAI_API_KEY={OPENAI_SVC}", "openai_key"),
    (f'{{"headers": {{"Authorization": "Bearer {OPENAI_LEGACY}"}}}}', "openai_key"),
    # Anthropic keys
    (f"ANTHROPIC_API_KEY={ANTHROPIC}", "anthropic_key"),
    (f'anthropic.Anthropic(api_key="{ANTHROPIC}")', "anthropic_key"),
    (f"The claude key ({ANTHROPIC}) stopped working yesterday.", "anthropic_key"),
    # AWS
    (f"aws configure set aws_access_key_id {AWS_ID}", "aws_access_key"),
    (f"[default]\naws_access_key_id = {AWS_TEMP}\nregion = eu-west-1", "aws_access_key"),
    (f"aws_secret_access_key = {AWS_SECRET}", "aws_access_key"),
    (f's3 = boto3.client("s3", aws_access_key_id="{AWS_ID}")', "aws_access_key"),
    (f'AWS_SECRET_ACCESS_KEY: "{AWS_SECRET}"', "aws_access_key"),
    # GitHub
    (f"git clone https://{GH_PAT}@github.com/acme/private-repo.git", "github_token"),
    (f"Use this token: {GH_OAUTH}", "github_token"),
    (f"env:\n  GH_TOKEN: {GH_SERVER}", "github_token"),
    (f"gh auth login --with-token <<< {GH_FINE}", "github_token"),
    # private keys
    (f"Why does ssh reject this?\n{_pem('OPENSSH ', 25)}\nThanks!", "private_key"),
    (f"key.pem:\n{_pem('RSA ', 30)}", "private_key"),
    (_pem("", 35), "private_key"),
    (f"PEM = '''{_pem('EC ', 40)}'''", "private_key"),
    ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI",
     "private_key"),
    # JWTs
    (f"Decode this token for me: {JWT}", "jwt"),
    (f"headers = {{'Authorization': 'Bearer {JWT_RS}'}}", "jwt"),
    (f"Set-Cookie: session={JWT}; HttpOnly; Secure", "jwt"),
    (f"https://app.example.org/callback#id_token={JWT_RS}&state=xyz", "jwt"),
    # e-mail addresses
    ("Please reply to john.doe@example.com by Friday.", "email"),
    ("Author: Jane Roe <jane.roe+notebooks@uni-heidelberg.de>", "email"),
    ("Kontakt: m.mueller@firma-gmbh.de, Tel. siehe Website", "email"),
    ("Écrivez à service.client@banque.fr pour toute réclamation.", "email"),
    ('users = [{"name": "Ann", "email": "ann_1987@gmail.com"}]', "email"),
    ("INSERT INTO users (email) VALUES ('bob.smith@company.co.uk');", "email"),
    ("<a href=\"mailto:support@acme.io\">Contact</a>", "email"),
    ("git config --global user.email \"dev@my-startup.com\"", "email"),
    # phone numbers
    ("Call me on +44 20 7946 0958 after six.", "phone"),
    ("Our US office: (555) 123-4567, ask for Dana.", "phone"),
    ("Phone: 555-123-4567", "phone"),
    ("Ring the London desk on 020 7946 0958.", "phone"),
    ("Mon portable : 06 12 34 56 78", "phone"),
    ("Erreichbar unter +49 30 12345678 oder per Mail.", "phone"),
    ("Tel. +33 6 12 34 56 78", "phone"),
    ('contact = {"name": "Li", "phone": "+1-202-555-0143"}', "phone"),
    ("Switchboard +41.44.668.18.00 (Zurich)", "phone"),
    ("UK: +44 (0)20 7946 0958", "phone"),
    ("WhatsApp +4915112345678", "phone"),
    ("Festnetz 030 1234 5678", "phone"),
    ("US: +1 (212) 555-0199", "phone"),
    ("Aus dem Ausland: 0044 20 7946 0958", "phone"),
    ("Toll-free 1-800-555-0199, Mon-Fri", "phone"),
    ('{"E164PhoneNumber": "+12065550101", "Status": "ACTIVE"}', "phone"),
    ("tel:+31-641044153", "phone"),
    # card numbers
    ("My card is 4242 4242 4242 4242, exp 12/28, CVC 123.", "card_number"),
    ("Charged 5555-5555-5555-4444 twice this month.", "card_number"),
    ("Amex 3782 822463 10005 was declined", "card_number"),
    ('payment = {"card": "4111111111111111", "exp": "09/27"}', "card_number"),
    ("Test with Discover 6011 1111 1111 1117 please", "card_number"),
    ("Mastercard (2-series): 2223 0031 2200 3222", "card_number"),
    ("JCB 3530111333300000", "card_number"),
    # IBANs
    ("Bitte überweisen an DE89 3704 0044 0532 0130 00 bis Montag.", "iban"),
    ("Pay to GB82 WEST 1234 5698 7654 32, reference INV-204.", "iban"),
    ("Virement sur FR14 2004 1010 0505 0001 3M02 606 svp", "iban"),
    ("IBAN: NL91ABNA0417164300", "iban"),
    ("iban = 'CH9300762011623852957'", "iban"),
    ("Konto AT61 1904 3002 3457 3201", "iban"),
    ("Cuenta ES91 2100 0418 4502 0005 1332", "iban"),
    ("Kontonummer NO93 8601 1117 947", "iban"),
    ("IE29 AIBK 9311 5212 3456 78", "iban"),
    # generic secrets
    ('password = "hunter2hunter2"', "generic_secret"),
    ("DB_PASSWORD=s3cr3tPassw0rd", "generic_secret"),
    ('db:\n  user: app\n  password: "Tr0ub4dor&3"', "generic_secret"),
    ("SECRET_KEY = 'django-insecure-9f#k2!x7m@q4z'", "generic_secret"),
    ('{"api_key": "Zx81kQp0LmN3vB7cR2"}', "generic_secret"),
    ("const apiKey = 'AIzaSyD3-" + fake(30, 41) + "';", "generic_secret"),
    ("client_secret: " + fake(32, 42), "generic_secret"),
    ('conn = psycopg.connect(host="db", password="Winter2026!")', "generic_secret"),
    ("Authorization: Bearer " + fake(40, 43, _B62 + "._-"), "generic_secret"),
    ("https://api.acme.io/v2/export?format=csv&token=" + fake(24, 44), "generic_secret"),
    ('self.access_token = "' + fake(28, 45) + '"', "generic_secret"),
    ("DATABASE_URL=postgres://app:" + fake(16, 46) + "@db.internal:5432/app", "generic_secret"),
    ("model = Model(password='IAmSensitive')", "generic_secret"),
]

NEGATIVES: list[str] = [
    # English prose
    "The quick brown fox jumps over the lazy dog.",
    "Explain server-sent events in one sentence.",
    "Summarise the attached meeting notes in three bullet points for the team.",
    "In 2026 the company had 1,234 employees and revenue of $1,234,567.89.",
    "The meeting is on 2026-11-24 at 14:30 in room 3.11.",
    "Version 3.11.7 fixed the bug that 3.11.6 introduced; upgrade to 3.12.1 when you can.",
    "Please translate: 'I forgot my password, how do I reset it?'",
    "Use a password manager and never reuse your password across sites.",
    "The token limit is 128000 tokens, and each request costs about 0.0004 dollars.",
    "Our server at 192.168.1.254 listens on port 8080; the backup is 10.0.0.12:5432.",
    "Order #A-10023-77 shipped on 24.11.2026 and arrives in 3-5 business days.",
    "Order number 100045982 was refunded; invoice INV-2026-00017.",
    "The population grew from 8 100 000 to 8 450 000 between 2010 and 2020.",
    "Email me the slides (not the raw data) when you get a chance.",
    "Follow @openrouter and @anthropic on social media for updates.",
    "ISBN 978-3-16-148410-0 is the classic example ISBN.",
    "Pi is approximately 3.14159265358979 and e is 2.71828182845904.",
    "Call the function twice and compare the results; the second call is cached.",
    # German / French prose
    "Die Sitzung findet am 24.11.2026 um 10:30 Uhr statt; bitte pünktlich sein.",
    "Der Umsatz stieg um 12,5 % auf 1.234.567,89 Euro.",
    "Bitte fasse den folgenden Text in zwei Sätzen zusammen.",
    "Das Passwort muss mindestens zwölf Zeichen lang sein.",
    "La réunion aura lieu le 24/11/2026 à 9h30, salle 204.",
    "Le chiffre d'affaires atteint 12 345 678 euros en 2025.",
    "Pouvez-vous expliquer la différence entre TCP et UDP ?",
    # Python
    "for i in range(1000000):\n    total += i * 2",
    "x = 1234567890\ny = x // 7 + 42",
    "MAGIC = 0x1F2E3D4C5B6A7988\nmask = 0xFFFFFFFF",
    "import hashlib\nprint(hashlib.sha256(b'abc').hexdigest())\n"
    "# ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "id = uuid.UUID('123e4567-e89b-12d3-a456-426614174000')",
    "@property\ndef name(self) -> str:\n    return self._name",
    "@dataclass(frozen=True)\nclass Point:\n    x: float\n    y: float",
    "password = os.environ['DB_PASSWORD']",
    "api_key = os.getenv('OPENROUTER_API_KEY')",
    "token = get_token(user)\nif not token:\n    raise AuthError('no token')",
    'API_KEY = "<your-api-key>"',
    'api_key = "your-key-here"',
    "password: str = 'changeme'",
    'OPENAI_API_KEY="sk-..."',
    "secret = '${SECRET}'",
    'token = "xxxxxxxxxxxxxxxxxxxxxxxx"',
    "password = '********'",
    'msg = f"{user}@{domain}: {count} new messages"',
    "pattern = re.compile(r'^[\\w.+-]+@[\\w-]+\\.[\\w.]+$')",
    "result = A @ B.T + np.eye(3)",
    "def check(password: str) -> bool:\n    return len(password) >= 12",
    "max_tokens = 4096\ntemperature = 0.7\ntop_p = 0.95",
    "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')",
    "timestamps = [1788825600000, 1788825660000, 1788825720000]",
    "value = 4242424242424241  # fails Luhn on purpose",
    "ids = [1234567812345678, 9876543210987654, 1111222233334444]",
    "DATE_FMT = '%Y-%m-%d %H:%M:%S'\nstart = datetime(2026, 11, 24, 9, 30)",
    "print(f'{n:,} rows in {elapsed:.2f}s')  # 1,048,576 rows in 3.14s",
    "assert version.parse('1.2.3') < version.parse('1.10.0')",
    "password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt())",
    "access_token = request.headers.get('Authorization')",
    "def render(self):\n    return self.W@x.reshape(-1, 1)",
    # JavaScript / TypeScript
    "const apiKey = process.env.OPENROUTER_API_KEY;",
    "fetch(url, { credentials: 'same-origin', headers: { 'Content-Type': 'application/json' } })",
    "import { Component } from '@angular/core';\nimport logo from './assets/logo@2x.png';",
    "const port = 3000;\napp.listen(port, () => console.log(`listening on ${port}`));",
    "const colours = ['#1a2b3c', '#ffffff', '#000000', '#123456'];",
    "const id = crypto.randomUUID(); // e.g. 3b241101-e2bb-4255-8caf-4136c566a962",
    "npm install lodash@4.17.21 react@18.2.0 @types/node@20.11.5",
    # SQL
    "SELECT id, created_at FROM orders WHERE total > 1000 AND created_at >= '2026-01-01';",
    "UPDATE users SET password_hash = crypt($1, gen_salt('bf')) WHERE id = $2;",
    "SELECT COUNT(*) FROM events WHERE ts BETWEEN 1788825600 AND 1788912000;",
    "CREATE TABLE accounts (id BIGINT PRIMARY KEY, email TEXT NOT NULL, phone TEXT);",
    # shell / config
    "git remote add origin git@github.com:acme/openrouter-nb.git",
    "pip install 'openrouter-nb @ git+https://github.com/acme/openrouter-nb.git@v0.1.0'",
    "pip install requests==2.31.0 httpx>=0.27 pandas~=2.2",
    "ssh -p 2222 deploy@staging\nscp build.tar.gz deploy@10.0.0.5:/srv/releases/",
    "docker run -p 8080:80 -e TOKEN=$TOKEN python@sha256:4b2f5c1e0a7d",
    "export GITHUB_TOKEN=$(gh auth token)",
    "curl -H \"Authorization: Bearer $OPENROUTER_API_KEY\" https://openrouter.ai/api/v1/models",
    "chmod 600 ~/.ssh/id_ed25519 && ssh-add ~/.ssh/id_ed25519",
    "if line.startswith('-----BEGIN PRIVATE KEY-----'):\n    in_key = True",
    "ping -c 4 8.8.8.8 && traceroute 1.1.1.1",
    "tar -xzf release-2.31.0.tar.gz -C /opt/app-1.2.3",
    # CSS / HTML
    "@media (max-width: 768px) {\n  .card { padding: 12px 16px; margin: 0 auto; }\n}",
    "@import url('https://fonts.googleapis.com/css2?family=Inter:wght@400;700&display=swap');",
    "<img src=\"icon@2x.png\" srcset=\"icon@3x.png 3x\" width=\"64\">",
    "<input type=\"password\" name=\"password\" placeholder=\"Password\" minlength=\"12\">",
    # data
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"
    "60e6kgAAAABJRU5ErkJggg==",
    '{"id": 98765432101, "created": 1788825600, "model": "openai/gpt-4o-mini", "object": "chat"}',
    '{"token": " extraordinary", "logprob": -0.0123, "top_logprobs": []}',
    '{"usage": {"prompt_tokens": 1234, "completion_tokens": 567, "total_tokens": 1801}}',
    '{"sha": "9fceb02d0ae598e95dc970b74767f19372d61af8", "ts": "2026-11-24T10:30:00Z"}',
    "| region | 2024 | 2025 |\n|---|---|---|\n| EU | 1 234 567 | 1 345 678 |\n"
    "| US | 9 876 543 | 9 999 999 |",
    "| id | amount |\n|----|--------|\n| 1001 | 250.00 |\n| 1002 | 1250.50 |",
    "lat, lon = 52.520008, 13.404954",
    "Matrix:\n[[1, 2, 3],\n [4, 5, 6],\n [7, 8, 9]]",
    "2 + 2 = 4, 12 * 12 = 144, and 1000000 / 8 = 125000.",
    "f(x) = 3x^2 + 2x - 7; solve for x in [-10, 10].",
    "Coordinates 0.123 0.456 0.789 and 1.5 -2.25 3.75",
    "Windows build 10.0.19045.3693 and kernel 6.8.0-45-generic",
    "Tracking: 1Z999AA10123456784 (UPS), ETA 3 days",
    "Date range 2026-11-24 2026-11-30, time 10:30:45.123",
    "MAC 00:1A:2B:3C:4D:5E, IPv6 2001:db8::ff00:42:8329",
    "Ticket JIRA-4521 blocks PROJ-1187; see PR #2234.",
    "Semantic versions: 0.1.0, 0.10.12, 1.0.0-rc.1, 2.0.0+build.5",
    "Hex dump: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f",
    "The GUID {3F2504E0-4F89-11D3-9A0C-0305E82C3301} identifies the interface.",
    "def luhn_example():\n    return '4242 4242 4242 4241'  # off by one, invalid",
    "Check digits in DE00 0000 0000 0000 0000 00 are invalid on purpose.",
    # look-alikes found by scanning the Python stdlib and site-packages
    "   id  value\n0  101  0.5\n1  102  0.7\n2  103  0.9",
    "Free Software Foundation, 51 Franklin Street, Boston, MA 02110-1301 USA.",
    "ts = '2025-01-02T03:04:05.6789010'\ntd = pd.Timedelta('1 Day 2:03:04.0123450')",
    "int32 range: -2147483648  +2147483392",
    "a = +4294967296  # 1 << 32",
    "rng = np.random.default_rng(2435908729190400)\nseed = 3562050283508273023",
    "assert f(4031078400000) == 14633730048000000*t**14 + 4828147466240000*t**12",
    "PUBLIC_KEY_OR_PASSWORD = 'PUBLIC_KEY_OR_PASSWORD'",
    "def sign(data: bytes, private_key: PKCS7PrivateKeyTypes, algo: str) -> bytes:",
    '{"Token": "sas-token-for-azure-blob-storage-access"}',
    '{"NextToken": "NextToken", "MaxResults": 50}',
    "Abramowitz & Stegun, ISBN 0-03-086370-8; see also 03.07.16.0001.01",
    "decomposition('\\u00bc') == '<fraction> 0031 2044 0034'",
    "ref = [+0.3333333, 0.4969051, 0.0176822155, 0.0521224686]",
    "assert abs(sol + 1.4142135623731*I) < 1e-9",
    "print(np.arange(10))  # [0 1 2 3 4 5 6 7 8 9]\nx = np.array([0.12 0.34 0.56 0.78])",
    "Fibonacci: 1 1 2 3 5 8 13 21 34 55 89 144 233",
    "token: ${{ secrets.GITHUB_TOKEN }}\npassword: !vault |\n  $ANSIBLE_VAULT;1.1;AES256",
    "secret_name = 'prod/db/password'\napi_key: str | None = None",
    '"password": {"type": "string", "minLength": 12}',
    "postgres://user:password@localhost/db and redis://:@localhost:6379/0",
    "https://user:pass@example.com/private is a URL with userinfo, not an e-mail",
    "Latency p50 120 ms, p99 1 250 ms, 0.1% errors",
    "M. E. J. Newman, Phys. Rev. E 78, 046110 2008",
    "assert t.strftime('%H %M %S %f') == '01 02 03 000004'",
    "In the README, replace ghp_" + "x" * 36 + " and AKIA" + "X" * 16 + " with your own values.",
    "GITHUB_TOKEN=ghp_" + "X" * 36 + "  # placeholder",
    "Anthropic keys look like sk-ant-" + "x" * 30 + "; OpenAI keys like sk-proj-" + "x" * 40 + ".",
]
