CREATE DATABASE dealledger_test OWNER dealledger;
