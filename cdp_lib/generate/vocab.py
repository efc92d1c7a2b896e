"""Fixed vocabularies the generator draws from (names, places, products, junk values).

Everything here is a plain Python literal: the generator turns it into Spark literal
arrays/maps, so no row is ever built on the driver.
"""

from __future__ import annotations

__all__ = [
    "FIRST_NAMES",
    "LAST_NAMES",
    "NICKNAMES",
    "EMAIL_DOMAINS",
    "COUNTRIES",
    "CITIES",
    "STREETS",
    "PHONE_PREFIXES",
    "CURRENCIES",
    "TZ_OFFSETS",
    "COUNTRY_NAMES",
    "JUNK_EMAILS",
    "JUNK_PHONES",
    "PRODUCT_CATEGORIES",
    "PRODUCT_WORDS",
    "PAGE_NAMES",
    "DEVICE_MODELS",
    "TICKET_SUBJECTS",
    "INTERESTS",
]

FIRST_NAMES = [
    "Robert", "William", "Elizabeth", "Katherine", "Michael", "James", "Richard", "Thomas", "Jonathan",
    "Alexander", "Christopher", "Daniel", "Matthew", "Joseph", "Margaret", "Jennifer", "Rebecca", "Samantha",
    "Victoria", "Benjamin", "Nicholas", "Anthony", "Edward", "Patricia", "Susan", "Deborah", "Stephen",
    "Andrew", "Timothy", "Catherine", "Olivia", "Amelia", "Isla", "Ava", "Mia", "Noah", "Oliver", "George",
    "Harry", "Leo", "Emma", "Sophie", "Lena", "Hannah", "Lukas", "Felix", "Jonas", "Paul", "Marie", "Camille",
    "Louise", "Chloe", "Hugo", "Louis", "Jules", "Gabriel", "Charlotte", "Grace", "Ruby", "Jack", "Liam",
    "Zoe", "Ethan", "Lucas", "Isabella", "Sofia", "Mohammed", "Aisha", "Priya", "Wei",
]
LAST_NAMES = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
    "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke",
    "Miller", "Davis", "Garcia", "Rodriguez", "Martinez", "Anderson", "Moore", "Martin", "Lee", "Harris",
    "Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Koch",
    "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Laurent",
    "O'Neil", "McDonald", "MacLeod", "Nguyen", "Kelly", "Murphy", "Ryan", "Singh", "Patel", "Khan",
    "Campbell", "Stewart", "Murray", "Young", "King", "Scott", "Baker", "Adams", "Mitchell", "Turner",
]
NICKNAMES = {
    "Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Katherine": "Kate", "Michael": "Mike",
    "James": "Jim", "Richard": "Rick", "Thomas": "Tom", "Jonathan": "Jon", "Alexander": "Alex",
    "Christopher": "Chris", "Daniel": "Dan", "Matthew": "Matt", "Joseph": "Joe", "Margaret": "Maggie",
    "Jennifer": "Jen", "Rebecca": "Becky", "Samantha": "Sam", "Victoria": "Vicky", "Benjamin": "Ben",
    "Nicholas": "Nick", "Anthony": "Tony", "Edward": "Ed", "Patricia": "Pat", "Susan": "Sue",
    "Deborah": "Debbie", "Stephen": "Steve", "Andrew": "Andy", "Timothy": "Tim", "Catherine": "Cathy",
    "Isabella": "Bella", "Gabriel": "Gabe", "Charlotte": "Lottie", "Oliver": "Ollie", "Harry": "Haz",
}
EMAIL_DOMAINS = {
    "GB": ["gmail.com", "hotmail.co.uk", "yahoo.co.uk", "outlook.com", "btinternet.com", "icloud.com"],
    "US": ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com"],
    "DE": ["gmail.com", "gmx.de", "web.de", "t-online.de", "outlook.de"],
    "FR": ["gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr"],
    "AU": ["gmail.com", "bigpond.com", "outlook.com", "optusnet.com.au", "icloud.com"],
}
# (country, weight): the customer base of a UK-headquartered retailer selling abroad.
COUNTRIES = [("GB", 0.40), ("US", 0.25), ("DE", 0.15), ("FR", 0.10), ("AU", 0.10)]
# country -> [(city, region, latitude, longitude, postcode stem)]
CITIES = {
    "GB": [("London", "Greater London", 51.5074, -0.1278, "SW"), ("Manchester", "North West", 53.4808, -2.2426, "M"),
           ("Birmingham", "West Midlands", 52.4862, -1.8904, "B"), ("Leeds", "Yorkshire", 53.8008, -1.5491, "LS"),
           ("Edinburgh", "Scotland", 55.9533, -3.1883, "EH"), ("Bristol", "South West", 51.4545, -2.5879, "BS")],
    "US": [("New York", "NY", 40.7128, -74.0060, "100"), ("Chicago", "IL", 41.8781, -87.6298, "606"),
           ("San Francisco", "CA", 37.7749, -122.4194, "941"), ("Boston", "MA", 42.3601, -71.0589, "021"),
           ("Seattle", "WA", 47.6062, -122.3321, "981"), ("Austin", "TX", 30.2672, -97.7431, "787")],
    "DE": [("Berlin", "Berlin", 52.5200, 13.4050, "10"), ("Hamburg", "Hamburg", 53.5511, 9.9937, "20"),
           ("Munchen", "Bayern", 48.1351, 11.5820, "80"), ("Koln", "Nordrhein-Westfalen", 50.9375, 6.9603, "50")],
    "FR": [("Paris", "Ile-de-France", 48.8566, 2.3522, "75"), ("Lyon", "Auvergne-Rhone-Alpes", 45.7640, 4.8357, "69"),
           ("Marseille", "Provence-Alpes-Cote d'Azur", 43.2965, 5.3698, "13"),
           ("Toulouse", "Occitanie", 43.6047, 1.4442, "31")],
    "AU": [("Sydney", "NSW", -33.8688, 151.2093, "20"), ("Melbourne", "VIC", -37.8136, 144.9631, "30"),
           ("Brisbane", "QLD", -27.4698, 153.0251, "40"), ("Perth", "WA", -31.9505, 115.8605, "60")],
}
STREETS = [
    "High Street", "Station Road", "Church Lane", "Main Street", "Park Avenue", "Oak Street", "Maple Drive",
    "Hauptstrasse", "Bahnhofstrasse", "Rue de la Paix", "Rue Victor Hugo", "George Street", "King Street",
    "Queen Street", "Mill Lane", "Elm Road", "Victoria Road", "Green Lane", "Schillerstrasse", "Avenue Foch",
]
# National significant number = prefix + random digits up to the length; all valid for `phonenumbers`.
PHONE_PREFIXES = {
    "GB": ("44", ["74", "75", "78"], 10),
    # area code + an exchange starting [2-9][2-9] (never 1xx or N11)
    "US": ("1", [a + x + y for a in ["212", "312", "415", "617", "206", "305", "512", "303", "404", "702"]
                 for x in "23456789" for y in "23456789"], 10),
    "DE": ("49", ["151", "152", "157", "159"], 11),
    "FR": ("33", ["60", "61", "62", "64", "65", "66", "68", "73", "74", "75", "76", "77", "78"], 9),
    "AU": ("61", ["400", "401", "402", "403", "404", "407", "408", "409", "410", "411", "412", "413", "414",
                  "415", "416", "417", "418", "419", "420", "421", "422", "423", "424", "425", "427", "428"], 9),
}
CURRENCIES = {"GB": "GBP", "US": "USD", "DE": "EUR", "FR": "EUR", "AU": "AUD"}
# Fixed offsets (no DST) used to render local timestamps; the instant is what matters.
TZ_OFFSETS = {"GB": 0, "US": -5, "DE": 1, "FR": 1, "AU": 10}
COUNTRY_NAMES = {
    "GB": ["United Kingdom", "UK", "England", "gb"], "US": ["United States", "USA", "us"],
    "DE": ["Germany", "Deutschland", "de"], "FR": ["France", "fr"], "AU": ["Australia", "au"],
}
JUNK_EMAILS = ["test@test.com", "unknown", "n/a", "noemail@noemail.com", "none@none.com"]
JUNK_PHONES = ["0000000000", "1234567890", "unknown", "n/a"]
PRODUCT_CATEGORIES = ["shoes", "dresses", "shirts", "jackets", "accessories", "bags", "beauty", "home", "kids", "sport"]
PRODUCT_WORDS = ["Classic", "Slim", "Organic", "Linen", "Leather", "Everyday", "Premium", "Vintage", "Urban", "Cosy"]
PAGE_NAMES = ["Home", "Category", "Product", "Search", "Cart", "Account", "Help"]
DEVICE_MODELS = {"ios": ["iPhone14,2", "iPhone15,3", "iPad13,1"], "android": ["Pixel 7", "SM-G991B", "SM-A536B"]}
TICKET_SUBJECTS = ["Where is my order?", "Return request", "Damaged item", "Change delivery address",
                   "Refund status", "Account locked", "Unsubscribe me", "Size advice"]
INTERESTS = ["fashion", "outdoors", "travel", "cooking", "fitness", "tech", "parenting", "gardening", "music"]
