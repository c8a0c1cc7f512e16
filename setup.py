from setuptools import find_packages, setup

setup(
    name="citizen-kiosk",
    version="0.1.0",
    description="Self-service government kiosk: national ID, certificates, card payment, printed documents",
    python_requires=">=3.11",
    packages=find_packages(include=["kiosk*", "drivers*", "screens*", "offline*", "central*"]),
    package_data={
        "kiosk": ["locale/*/LC_MESSAGES/*.po"],
        "screens": ["*.kv"],
        "central": ["seed/*.json"],
    },
    install_requires=[
        "kivy==2.3.1",
        "pyscard>=2.3,<3",
        "python-escpos>=3.1,<4",
        "gpiozero>=2.0,<3",
        "python-bidi>=0.6,<0.7",
        "arabic-reshaper>=3.0,<4",
        "babel>=2.14",
        "cryptography>=42",
        "httpx>=0.27,<1",
        "pillow>=10",
        "qrcode>=7.4",
        # reference central service
        "fastapi>=0.110",
        "uvicorn>=0.29",
        "sqlalchemy>=2.0,<3",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            "zxing-cpp>=2.2",
        ],
    },
    entry_points={
        "console_scripts": [
            "kiosk=kiosk.cli:main",
            "kiosk-central=central.cli:main",
            "kiosk-sim=drivers.sim_cli:main",
        ],
    },
)
